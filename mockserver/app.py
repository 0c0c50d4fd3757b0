"""The app: the routes of a mock server, assembled over one shared state.

``create_app`` loads and checks the fixtures (``startup_checks``), builds the
state every route shares (``state``), and mounts the chat route
(``chat_route``), the admin API (``admin``) and the dashboard behind the
local-only guard. Every route's refusal becomes the contract's Error body here,
and anything unexpected a logged 500, so one bad request never stops the server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import mockserver
from contract.core.profiles import Profile
from contract.core.spec import load_spec
from contract.core.validate import ContractValidator

from . import dashboard
from .admin import fixtures_route, health, journal, model, models, remove_fixture, reset
from .chat_route import chat_completions
from .embeddings_route import embeddings
from .faults import error_body
from .fixtures import FixtureError
from .local_guard import LocalOnly
from .request_reading import ApiError, ClientGone
from .settings import Settings
from .shared_store import SharedStore
from .startup_checks import check_fixture, load_checked_fixtures
from .state import MockState, OnUnmatched, Store
from .watch import FixtureWatcher

logger = logging.getLogger("mockserver")

Handler = Callable[[MockState, Request], Awaitable[Response]]  # a route: the shared state and the request


def bundled_fixtures_dir() -> Path:
    """The conversations shipped with the package: inside the wheel, or at the repository root."""
    here = Path(mockserver.__file__).resolve().parent
    for candidate in (here / "bundled_fixtures", here.parent / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise FixtureError("the bundled fixtures folder is missing from this installation")


def create_app(
    fixtures_dir: Path | str | None = None,
    settings: Settings = Settings(),
    *,
    spec_path: Path | str | None = None,
    profile: Profile | str | None = None,
    state_file: Path | str | None = None,
    on_unmatched: OnUnmatched | None = None,
) -> Starlette:
    """Load and check the fixtures (the bundled ones when ``fixtures_dir`` is None), then build the app.

    A bad fixture raises FixtureError. With ``settings.watch`` the folder is reloaded when a file
    in it changes, until the app's lifespan ends. ``state_file`` is the SQLite file that ``--workers`` processes
    share (``shared_store``); without it the state stays in this process's memory,
    the fast path. ``profile`` is the dialect served (``seed``, ``openai``, or a Profile with overlays).
    ``on_unmatched`` makes who answers a request no fixture matches (``--record-missing``:
    ``recording.recorder.record_missing``); without it, such a request gets the ``no_fixture_match`` error.
    """
    validator = ContractValidator(load_spec(spec_path, profile))
    bundled = fixtures_dir is None
    folder = bundled_fixtures_dir() if fixtures_dir is None else Path(fixtures_dir)
    if settings.fallback is None:
        settings = dataclasses.replace(settings, fallback=bundled)
    seed = settings.seed
    watcher = None
    if settings.watch:
        watcher = FixtureWatcher(
            folder, functools.partial(check_fixture, validator=validator, seed=seed), settings.watch_interval
        )
        fixtures = watcher.load()
    else:
        fixtures = load_checked_fixtures(folder, validator, seed)
    store: Store | None = None
    if state_file is not None:
        store = SharedStore(state_file, fixtures, settings.journal_size)
    state = MockState(fixtures, validator, settings, folder, watcher, store, on_unmatched)
    routes = [
        Route("/chat/completions", _guarded(state, chat_completions), methods=["POST"]),
        Route("/v1/chat/completions", _guarded(state, chat_completions), methods=["POST"]),
        Route("/embeddings", _guarded(state, embeddings), methods=["POST"]),
        Route("/v1/embeddings", _guarded(state, embeddings), methods=["POST"]),
        Route("/health", _guarded(state, health), methods=["GET"]),
        Route("/models", _guarded(state, models), methods=["GET"]),
        Route("/v1/models", _guarded(state, models), methods=["GET"]),
        Route("/models/{model:path}", _guarded(state, model), methods=["GET"]),
        Route("/v1/models/{model:path}", _guarded(state, model), methods=["GET"]),
        Route("/__mock/requests", _guarded(state, journal), methods=["GET", "DELETE"]),
        Route("/__mock/fixtures", _guarded(state, fixtures_route), methods=["GET", "POST"]),
        Route("/__mock/fixtures/{name:path}", _guarded(state, remove_fixture), methods=["DELETE"]),
        Route("/__mock/reset", _guarded(state, reset), methods=["POST"]),
        Route("/__mock/", _guarded(state, dashboard.page), methods=["GET"]),
        Route("/__mock/events", _guarded(state, dashboard.events), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
        middleware=[Middleware(LocalOnly, allowed_hosts=settings.allowed_hosts)],
    )
    app.state.mock = state
    if watcher is not None:  # started here, not in the lifespan: the command line serves with lifespan off
        watcher.start(state.store.replace_fixtures)
    return app


GC_THRESHOLDS = (50_000, 20, 100)  # allocations before a young collection, then collections before older ones


def settle_heap() -> None:
    """Exempt what was loaded from garbage collection, and collect far less often while serving.

    Python's collector walks every tracked object on each full pass. With 10,000 fixtures loaded, the
    passes that ordinary requests trigger made each request cost 1.6 times what it costs with 10; with a
    thousand paced streams open, they stopped the event loop for up to 100 ms at a time and every stream's
    chunks came late (p99 lateness about 100 ms, against about 30 ms with no collection at all). What
    exists at start-up lives as long as the server, so it is moved out of the collector's sight once; and
    the thresholds are raised, so a full pass comes rarely (almost everything a request allocates is freed
    by reference counting; the collector is only needed for cycles). Only the command line calls this: a
    process that builds many apps (a test suite) must keep collecting them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _guarded(state: MockState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Turn ApiError into its Error body, and any other exception into a logged 500; keep serving."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(state, request)
        except ApiError as exc:
            return exc.response()
        except ClientGone as gone:  # nobody to answer: not the server's failure, so no traceback
            logger.info("%s %s: %s", request.method, request.url.path, gone)
            return Response(status_code=400)
        except Exception:
            logger.exception("unexpected error while answering %s %s", request.method, request.url.path)
            return JSONResponse(
                error_body(500, "the mock server failed unexpectedly; see its log", "internal_error"), 500
            )

    return endpoint


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})"
        return JSONResponse(error_body(405, message, "method_not_allowed"), 405, headers=exc.headers)
    message = f"no route {request.method} {request.url.path}; the API is POST /chat/completions or /v1/chat/completions"
    return JSONResponse(error_body(404, message, "unknown_path"), exc.status_code)
