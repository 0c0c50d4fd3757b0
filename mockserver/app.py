"""The Starlette app: check the request, find the reply, send it as a real server would.

Every request passes through the same steps, and each step that refuses
answers with the contract's Error body and a stable ``code``: body size and
type, JSON syntax, the contract, the mock's own headers, what a real server
refuses, the fixture lookup, and whether the fixture obeys the request. Only
then is a reply rendered, with its fault plan and pacing, into network writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import mockserver
from contract.core import pointers
from contract.core.dialect import Dialect
from contract.core.profiles import Profile
from contract.core.redaction import REDACTED, Redactor, is_secret_header, secret_values
from contract.core.spec import load_spec
from contract.core.validate import ContractValidator, ValidationError

from . import faults as fault_plans
from .faults import Disconnect, FaultPlan, Write, error_body
from .fixtures import PYTHON_SOURCE, Fixture, FixtureError, check_fixture_messages, fixture_from_dict, load_fixtures
from .local_guard import LocalOnly
from .matching import FixtureIndex, Match
from .prepared import ReplyBytes
from .protocol import mark_planned_drop
from .randomness import RequestDraws
from .request_body import BodyProblem, journal_body, parse_request_json
from .request_rules import (
    Refusal,
    dialect_problem,
    request_problem,
    shape_for_modalities,
    turn_mismatch,
    wants_audio,
)
from .sdk_hints import STREAM_DEFAULT_HEADER, warn_once_if_stream_omitted
from .settings import Settings
from .state import MockStore, Store
from .stream import (
    DEFAULT_MODEL,
    NO_DELAY,
    Chunk,
    ReplyIdentity,
    choices_usage,
    compute_usage,
    layer_pacing,
    pacing_delays,
    parse_pacing_header,
    planned_timings,
    render_chunks,
    render_completion,
    usage_override_problem,
)
from .turns import AssistantTurn, Pacing
from .watch import FixtureWatcher

logger = logging.getLogger("mockserver")

JSON_MEDIA = "application/json"
API_SOURCE = "<api>"  # the source of conversations added with POST /__mock/fixtures
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MAX_NEAR_MISSES = 3


def bundled_fixtures_dir() -> Path:
    """The conversations shipped with the package: inside the wheel, or at the repository root."""
    here = Path(mockserver.__file__).resolve().parent
    for candidate in (here / "bundled_fixtures", here.parent / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise FixtureError("the bundled fixtures folder is missing from this installation")


class ClientGone(Exception):
    """The client left while its request was being read: there is nobody to answer."""


class ApiError(Exception):
    """A refusal that becomes an Error body; raised anywhere on the request path."""

    def __init__(
        self, status: int, message: str, code: str, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_body(self.status, self.message, self.code, self.param), self.status, headers=self.headers
        )


@dataclass
class Reply:
    """What was decided for one request, for the response and the journal."""

    turn: AssistantTurn
    label: str  # "name (file:line)" of the turn, or "fallback"
    pacing: Pacing | None = None
    more_choices: tuple[AssistantTurn, ...] = ()  # choices 1, 2... when the request asks for ``n``


class MockState:
    """What the routes share: the fixed validator and settings, and the store of everything that changes."""

    recorder: Any = None  # set by mockserver.recording.recorder.record_missing: unmatched requests go upstream

    def __init__(
        self,
        fixtures: list[Fixture],
        validator: ContractValidator,
        settings: Settings,
        folder: Path | None = None,
        watcher: FixtureWatcher | None = None,
        store: Store | None = None,
    ) -> None:
        self.validator = validator
        self.dialect = Dialect.of(validator.spec)
        self.settings = settings
        self.folder = folder
        self.watcher = watcher
        self.store: Store = store if store is not None else MockStore(fixtures, settings.journal_size)

    @property
    def index(self) -> FixtureIndex:
        return self.store.index

    @property
    def journal(self) -> list[dict[str, Any]]:
        """The journaled requests, oldest first, whichever process answered them."""
        return self.store.entries()

    @property
    def fixture_count(self) -> int:
        return len(self.store.fixtures)

    def next_draws(self) -> RequestDraws:
        """The random choices of the next request, from the server seed and its number: replays are exact."""
        return RequestDraws(self.settings.seed, self.store.next_request())

    def add_fixture(self, fixture: Fixture) -> bool:
        """Check and serve ``fixture``; True when it replaced one of the same name.

        A conversation from a file in the fixtures folder (one just recorded) stays like those loaded at
        start-up; any other is served until the next reset.
        """
        check_fixture(fixture, self.validator, self.settings.seed)
        if (
            self.folder is not None
            and fixture.source.is_file()
            and fixture.source.resolve().is_relative_to(self.folder.resolve())
        ):
            replaced = self.store.find(fixture.name) is not None
            self.store.put_file_fixture(fixture)
            return replaced
        return self.store.add(fixture)


# -- start-up checks ------------------------------------------------------------------------------


def check_fixture(fixture: Fixture, validator: ContractValidator, seed: int = 0) -> None:
    """Raise FixtureError unless every message and every reply, as it would be sent, meets the contract."""
    check_fixture_messages(fixture, validator)
    for index, turn in fixture.replies():
        where = turn.source or fixture.source
        body = representative_request(fixture, index, turn)
        problem = usage_override_problem(turn.usage)
        if problem:
            raise FixtureError(f"{where}: {problem}")
        plan = None
        if turn.fault is not None:
            try:
                plan = fault_plans.parse_fault(turn.fault)
            except ValueError as exc:
                raise FixtureError(f"{where}: {exc}") from None
        shaped = shape_for_modalities(turn, body, seed)
        identity = ReplyIdentity.new(random.Random(seed), body["model"], int(time.time()))
        usage = compute_usage(body["messages"], shaped)
        errors = validator.validate_response(200, render_completion(shaped, identity, usage))
        # A fault plan may look at every chunk; without one, a long reply is checked in its condensed
        # form, which renders every kind of chunk the full one does (see representative_chunks).
        chunks = render_chunks(shaped if plan is not None else condensed(shaped), identity, usage)
        for chunk in representative_chunks(chunks):
            errors = errors or validator.validate_event(chunk.data)
        if errors:
            raise FixtureError(f"{where}: the reply would break the contract: {errors[0]}")
        if plan is not None:
            problem = fault_plans.fault_problem(plan, [chunk.encode() for chunk in chunks])
            if problem:
                raise FixtureError(f"{where}: {problem}")


CONDENSE_AT = 4096  # characters: a longer text is checked as its first and last CONDENSE_AT // 2


def condensed(turn: AssistantTurn) -> AssistantTurn:
    """``turn`` with each long text cut to its head and tail: the same kinds of chunk, far fewer of them.

    Rendering a 1 MB reply makes 300,000 chunks, seconds of start-up spent on pieces that differ only
    in their words; the cut keeps the first and last pieces and the boundary between kinds of delta.
    """

    def cut(text: str | None) -> str | None:
        if text is None or len(text) <= CONDENSE_AT:
            return text
        return text[: CONDENSE_AT // 2] + text[-(CONDENSE_AT // 2) :]

    calls = tuple(
        {**call, "function": {**call["function"], "arguments": cut(call["function"]["arguments"])}}
        if isinstance(call.get("function"), dict) and isinstance(call["function"].get("arguments"), str)
        else call
        for call in turn.tool_calls
    )
    return dataclasses.replace(turn, content=cut(turn.content), refusal=cut(turn.refusal), tool_calls=calls)


def representative_chunks(chunks: Sequence[Chunk]) -> list[Chunk]:
    """The chunks that stand for all of a reply: the first and last two, and the first of each shape.

    Chunks of one shape differ only in the text of their strings (one content piece, then the next),
    and the contract says nothing about that text chunk by chunk, so validating one of each shape
    keeps the start-up guarantee (a reply that would break the contract fails here) while a 1 MB
    reply of 300,000 chunks costs a few validations instead of 300,000. The shape keeps every key,
    every non-string value and whether a string is empty, so an index, a null or a finish reason
    that differs is a shape of its own.
    """
    picked: dict[Any, Chunk] = {}
    for position, chunk in enumerate(chunks):
        key = ("edge", position) if position == 0 or position >= len(chunks) - 2 else _shape(chunk.data)
        picked.setdefault(key, chunk)
    return list(picked.values())


def _shape(data: Any) -> Any:
    """What a chunk is made of, ignoring the text of its strings; cheap for the common text delta."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], dict) and len(data) == 6:
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict) and all(type(text) is str and text for text in delta.values()) and len(choice) == 4:
            return (
                "text",
                tuple(delta),
                choice.get("index"),
                choice.get("logprobs"),
                choice.get("finish_reason"),
                tuple(data),
                type(data.get("usage")),
            )
    return _deep_shape(data)


def _deep_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((key, _deep_shape(item)) for key, item in value.items())
    if isinstance(value, list):
        return tuple(_deep_shape(item) for item in value)
    if isinstance(value, str):
        return str if value else ""
    return (type(value), value)


def representative_request(fixture: Fixture, index: int, turn: AssistantTurn) -> dict[str, Any]:
    """The request that plays turn ``index``: the messages before it and the fixture's model."""
    match = fixture.match if isinstance(fixture.match, dict) else {}
    model = match.get("model") if isinstance(match.get("model"), str) else DEFAULT_MODEL
    body: dict[str, Any] = {"model": model, "messages": list(fixture.conversation[:index])}
    if turn.audio is not None:
        body["modalities"] = ["text", "audio"]
    return body


def load_checked_fixtures(folder: Path, validator: ContractValidator, seed: int) -> list[Fixture]:
    fixtures = load_fixtures(folder)
    for fixture in fixtures:
        check_fixture(fixture, validator, seed)
    return fixtures


# -- the app --------------------------------------------------------------------------------------


def create_app(
    fixtures_dir: Path | str | None = None,
    settings: Settings = Settings(),
    *,
    spec_path: Path | str | None = None,
    profile: Profile | str | None = None,
    state_file: Path | str | None = None,
) -> Starlette:
    """Load and check the fixtures (the bundled ones when ``fixtures_dir`` is None), then build the app.

    A bad fixture raises FixtureError. With ``settings.watch`` the folder is reloaded when a file
    in it changes, until the app's lifespan ends. ``state_file`` is the SQLite file that ``--workers`` processes
    share (``shared_store``); without it the state stays in this process's memory,
    the fast path. ``profile`` is the dialect served (``seed``, ``openai``, or a Profile with overlays).
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
        from .shared_store import SharedStore  # only worker processes need it

        store = SharedStore(state_file, fixtures, settings.journal_size)
    state = MockState(fixtures, validator, settings, folder, watcher, store)
    from . import dashboard  # it builds on this module

    routes = [
        Route("/chat/completions", _guarded(state, chat_completions), methods=["POST"]),
        Route("/v1/chat/completions", _guarded(state, chat_completions), methods=["POST"]),
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


def _guarded(state: MockState, handler: Any) -> Any:
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


async def health(state: MockState, request: Request) -> Response:
    return JSONResponse({"status": "ok", "fixtures": state.fixture_count})


def _model_names(state: MockState) -> set[str]:
    """The models the fixtures name (``match.model``); with the fallback on, any model is answered, so the
    default model is one too."""
    named = {fixture.match["model"] for fixture in state.store.fixtures if isinstance(fixture.match.get("model"), str)}
    if state.settings.fallback or not named:
        named.add(DEFAULT_MODEL)
    return named


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "mockserver"}


async def models(state: MockState, request: Request) -> Response:
    """The models, in OpenAI's list shape: some clients ask first."""
    return JSONResponse({"object": "list", "data": [_model_object(name) for name in sorted(_model_names(state))]})


async def model(state: MockState, request: Request) -> Response:
    """One model (the SDK's ``models.retrieve``), or the API's 404 error body for a model nobody serves."""
    name = request.path_params["model"]
    if name not in _model_names(state):
        raise ApiError(
            404, f"The model {name!r} does not exist (GET /v1/models lists the ones served)", "model_not_found", "model"
        )
    return JSONResponse(_model_object(name))


async def journal(state: MockState, request: Request) -> Response:
    if request.method == "DELETE":
        state.store.clear_journal()
        return JSONResponse({"cleared": True})
    return JSONResponse({"requests": state.journal})


async def fixtures_route(state: MockState, request: Request) -> Response:
    """GET lists the conversations served now; POST adds one (the fixture-file format, as JSON)."""
    if request.method == "GET":
        return JSONResponse({"fixtures": [_fixture_summary(state, fixture) for fixture in state.store.fixtures]})
    body = _parse_json(await _read_body(state, request, request.headers))
    if not isinstance(body, dict):
        raise ApiError(400, "a fixture must be a JSON object with a 'conversation'", "invalid_fixture")
    try:
        # Building and checking a large conversation takes a while (a reply of 900 KB: ~0.1 s); off the
        # event loop, so the streams being served meanwhile do not stall.
        fixture, replaced = await asyncio.to_thread(_add_posted_fixture, state, body)
    except (FixtureError, ValueError, RecursionError) as exc:
        message = str(exc) if not isinstance(exc, RecursionError) else "the fixture is nested too deeply"
        raise ApiError(400, message, "invalid_fixture") from None
    return JSONResponse({"name": fixture.name, "replaced": replaced, "fixtures": state.fixture_count})


def _add_posted_fixture(state: MockState, body: dict[str, Any]) -> tuple[Fixture, bool]:
    fixture = fixture_from_dict(body, source=API_SOURCE, name=body.get("name"))
    return fixture, state.add_fixture(fixture)


async def remove_fixture(state: MockState, request: Request) -> Response:
    """Stop serving one conversation, from a file or added, until the next reset."""
    name = request.path_params["name"]
    if not state.store.remove(name):
        raise ApiError(
            404, f"no fixture named {name!r} is loaded (GET /__mock/fixtures lists them)", "fixture_not_found", "name"
        )
    return JSONResponse({"removed": name, "fixtures": state.fixture_count})


async def reset(state: MockState, request: Request) -> Response:
    """Back to how the server started: journal, scenarios and run-time conversations."""
    state.store.reset()
    return JSONResponse({"reset": True, "fixtures": state.fixture_count})


def _fixture_summary(state: MockState, fixture: Fixture) -> dict[str, Any]:
    file: str | None = None
    if str(fixture.source) not in (API_SOURCE, PYTHON_SOURCE):
        try:
            file = (
                fixture.source.resolve().relative_to(state.folder.resolve()).as_posix()
                if state.folder
                else str(fixture.source)
            )
        except ValueError:
            file = str(fixture.source)
    return {
        "name": fixture.name,
        "file": file,
        "turns": len(fixture.turns),
        "hits": state.store.hits(fixture.name),
        "added": state.store.is_added(fixture.name),
    }


# -- POST /chat/completions -----------------------------------------------------------------------


async def chat_completions(state: MockState, request: Request) -> Response:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}
    entry: dict[str, Any] = {
        "time": time.time(),
        "method": request.method,
        "path": request.scope["path"],
        "headers": _redacted(headers.items()),
        "body": None,
        "status": None,
        "fixture": None,
        "turn": None,
        "play": None,
        "near_misses": [],
        "fault": None,
        "error": None,
        "timings": None,
    }
    try:
        response = await _answer(state, request, headers, entry)
        entry["status"] = response.status_code
    except ApiError as exc:
        entry["status"], entry["error"] = exc.status, {"code": exc.code, "message": exc.message}
        if exc.code == "no_fixture_match":
            logger.warning("%s", exc.message)
        raise
    except ClientGone as gone:
        entry["error"] = {"code": "client_disconnected", "message": str(gone)}
        raise
    except Exception:
        entry["status"] = 500
        raise
    finally:  # journaled once, complete: a store shared by several workers takes whole records
        state.store.record(entry)
    return response


async def _answer(state: MockState, request: Request, headers: dict[str, str], entry: dict[str, Any]) -> Response:
    _check_content_type(headers)
    raw = await _read_body(state, request, headers)
    entry["body"] = raw[:2000].decode("utf-8", "replace")  # replaced by the parsed body once it parses
    body = _parse_json(raw)
    entry["body"] = journal_body(body, len(raw))
    errors = state.validator.validate_request(body)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError(
            400, f"the request breaks the contract: {errors[0]}{more}", "invalid_request", pointer_to_param(errors[0])
        )
    header_pacing = _header(headers, "x-mock-pacing", parse_pacing_header)
    header_fault = _header(headers, "x-mock-fault", fault_plans.parse_fault_header)
    refusal = request_problem(body) or dialect_problem(body, state.dialect)
    if refusal is not None:
        raise ApiError(400, refusal.message, refusal.code, refusal.param)
    draws = state.next_draws()
    try:
        reply = await _find_reply(state, body, entry)
    except ApiError as exc:  # --record-missing: what no fixture answers, the upstream answers and is recorded
        if exc.code != "no_fixture_match" or state.recorder is None:
            raise
        entry["fixture"] = "upstream"
        return await state.recorder.forward(request, raw)
    streams, hint = _streams(state, request, headers, body, reply.turn)
    for candidate in (reply.turn, *reply.more_choices):
        mismatch = turn_mismatch(candidate, body)
        if mismatch:
            raise ApiError(400, f"fixture {reply.label} does not fit this request: {mismatch}", "fixture_mismatch")
    turn = await _off_the_loop_if(wants_audio(body), shape_for_modalities, reply.turn, body, state.settings.seed)
    others = tuple(shape_for_modalities(extra, body, state.settings.seed) for extra in reply.more_choices)
    identity = ReplyIdentity(draws.reply_id(), int(time.time()), body.get("model") or DEFAULT_MODEL)
    usage = choices_usage(body["messages"], (turn, *others)) if others else compute_usage(body["messages"], turn)
    rendered = ReplyBytes(turn, identity, usage, usage_chunk=state.dialect.sends_usage_chunk(body), more_choices=others)
    plan = _fault_plan(state, reply, _spend_header_fault(state, header_fault, body), rendered, draws)
    entry["fault"] = plan.describe() if plan else None
    headers = {"X-Mock-Fixture": header_text(reply.label)}
    if hint and streams:
        headers[STREAM_DEFAULT_HEADER] = hint
    if plan is not None and plan.type == "http_error":
        status, error, extra = fault_plans.injected_error(plan)
        return JSONResponse(error, status, headers=headers | extra)
    if not streams:
        content = rendered.completion()
        if plan is None or plan.type not in ("disconnect", "stall"):  # stream faults do not apply to JSON
            return Response(content, media_type=JSON_MEDIA, headers=headers)
        return WireResponse(_play(fault_plans.body_writes(content, plan)), media_type=JSON_MEDIA, headers=headers)
    pacing = NO_DELAY if state.settings.no_delay else layer_pacing(reply.pacing, state.settings.pacing)
    if header_pacing is not None:
        pacing = layer_pacing(header_pacing, pacing)
    delays = pacing_delays(rendered.paced, pacing, draws.rng if pacing.jitter else None)
    writes = fault_plans.stream_writes(rendered.events, delays, plan, identity.id)
    entry["timings"] = planned_timings(rendered.paced, delays, writes)
    return WireResponse(_play(writes), media_type="text/event-stream; charset=utf-8", headers=headers | SSE_HEADERS)


def _streams(
    state: MockState, request: Request, headers: Mapping[str, str], body: dict[str, Any], turn: AssistantTurn
) -> tuple[bool, str | None]:
    """Whether to stream, and the hint header for a stream nobody asked for by name.

    ``stream`` as given wins; then the turn's ``stream_default`` (a recorded turn answers as its upstream
    did); then the profile's default, which is where the seed's surprise lives.
    """
    if isinstance(body.get("stream"), bool):
        return body["stream"], None
    if turn.stream_default is not None:
        return turn.stream_default, None
    hint = warn_once_if_stream_omitted(request.app.state, headers.get("user-agent", ""), body, state.dialect)
    return state.dialect.streams(body), hint


async def _off_the_loop_if(slow: bool, work: Any, *args: Any) -> Any:
    """Run ``work`` in a thread when it may take long (synthesising audio takes up to half a second), so
    other clients' streams keep their pacing; quick work stays on the loop, where a thread would only cost."""
    return await asyncio.to_thread(work, *args) if slow else work(*args)


async def _find_reply(state: MockState, body: dict[str, Any], entry: dict[str, Any]) -> Reply:
    """The fixture turn (or the fallback's) that answers ``body``; with ``n``, one turn per choice.

    A fixture turn answers every choice alike, as a model at temperature 0 would; the fallback makes up
    a different reply for each.
    """
    count = state.dialect.choice_count(body)
    found = state.index.lookup(body)
    if isinstance(found, Match):
        fixture = found.fixture
        play = state.store.take_play(fixture.name, found.turn_index)
        scenario = fixture.scenarios.get(found.turn_index)
        turn = scenario.step_at(play) if scenario is not None else found.turn
        entry["fixture"], entry["turn"], entry["play"] = fixture.name, found.turn_index, play + 1
        label = f"{fixture.name} ({_in_folder(state, turn.source or str(fixture.source))})"
        return Reply(turn, label, fixture.pacing, (turn,) * (count - 1))
    near = [_in_folder(state, str(miss)) for miss in found[:MAX_NEAR_MISSES]]
    entry["near_misses"] = near
    if state.settings.fallback:
        from .fallback import fallback_turn  # only servers with a fallback need it

        seed = state.settings.seed
        made_up = await asyncio.to_thread(  # may search for an instance
            lambda: [fallback_turn(body, seed + choice) for choice in range(count)]
        )
        for turn_or_refusal in made_up:
            if isinstance(turn_or_refusal, Refusal):
                raise ApiError(
                    turn_or_refusal.status, turn_or_refusal.message, turn_or_refusal.code, turn_or_refusal.param
                )
        entry["fixture"] = "fallback"
        turns = [turn for turn in made_up if not isinstance(turn, Refusal)]
        return Reply(turns[0], fallback_label(near), None, tuple(turns[1:]))
    closest = "".join(f"\n  - {miss}" for miss in near) if near else " no fixture comes close"
    raise ApiError(
        400,
        f"no fixture matches this request ({state.fixture_count} loaded); closest:{closest}",
        "no_fixture_match",
        "messages",
    )


MAX_LABEL_HEADER = 400  # characters of X-Mock-Fixture; the journal keeps the whole near miss


def header_text(text: str) -> str:
    """``text`` as a header value: ASCII, no control characters (a fixture's name is the user's), bounded."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return printable if len(printable) <= MAX_LABEL_HEADER else printable[: MAX_LABEL_HEADER - 3] + "..."


def fallback_label(near_misses: Sequence[str]) -> str:
    """``fallback``, and the nearest fixture with why it missed: a made-up reply where a fixture was meant
    is the surprise a user must see at once (X-Mock-Fixture, the plugin's failure report)."""
    return f"fallback; nearest: {near_misses[0]}" if near_misses else "fallback"


def _in_folder(state: MockState, text: str) -> str:
    """Paths inside the fixtures folder written relative to it (``faults/rate-limit.yaml:7``), as users see them."""
    return _relative_to(_folder_prefixes(state.folder), text) if state.folder is not None else text


@functools.lru_cache(maxsize=64)
def _folder_prefixes(folder: Path) -> tuple[str, ...]:
    """The folder as given and as resolved; resolving asks the file system, so once per folder."""
    return tuple({str(folder.resolve()).rstrip("/") + "/", str(folder).rstrip("/") + "/"})


@functools.lru_cache(maxsize=4_096)  # labels repeat: one per fixture turn, asked on every request it answers
def _relative_to(prefixes: tuple[str, ...], text: str) -> str:
    for prefix in prefixes:
        text = text.replace(prefix, "")
    return text


def _spend_header_fault(state: MockState, header: FaultPlan | None, body: dict[str, Any]) -> FaultPlan | None:
    """``X-Mock-Fault: ...; times=N`` applies to the first N requests with that header and body.

    SDKs re-send the same headers and body on each retry, so counting by both
    lets one request play "fails twice, then succeeds" with no fixture at all.
    """
    if header is None or header.times is None:
        return header
    key = hashlib.sha256(f"{header!r}\0{json.dumps(body, sort_keys=True)}".encode()).hexdigest()
    return header if state.store.take_header_fault(key) < header.times else None


def _fault_plan(
    state: MockState, reply: Reply, header: FaultPlan | None, rendered: ReplyBytes, draws: RequestDraws
) -> FaultPlan | None:
    """The request header wins, then the fixture turn, then the seeded random rate."""
    plan = header
    if plan is None and reply.turn.fault is not None:
        plan = fault_plans.parse_fault(reply.turn.fault)  # checked at start-up
    if plan is None and state.settings.fault_rate > 0 and draws.rng.random() < state.settings.fault_rate:
        candidate = fault_plans.random_fault(draws.rng, state.settings.fault_types, len(rendered.events))
        plan = None if fault_plans.fault_problem(candidate, rendered.events) else candidate
    if plan is not None:
        problem = fault_plans.fault_problem(plan, rendered.events)
        if problem:
            raise ApiError(400, f"X-Mock-Fault: {problem}", "fault_not_applicable", None)
    return plan


# -- request reading ------------------------------------------------------------------------------


def _check_content_type(headers: Mapping[str, str]) -> None:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA:
        seen = repr(media) if media else "no Content-Type"
        raise ApiError(
            400,
            f"the body must be application/json (the only request type the contract documents), got {seen}",
            "unsupported_content_type",
        )


async def _read_body(state: MockState, request: Request, headers: Mapping[str, str]) -> bytes:
    """The body, read piece by piece from the server and abandoned as soon as it passes the cap."""
    cap = state.settings.max_body
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone(f"the client closed the connection after {size} bytes of its body")
        piece = message.get("body", b"")
        pieces.append(piece)
        size += len(piece)
        if size > cap:
            raise _too_large(cap)
        if not message.get("more_body", False):
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # nearly every body is one piece


def _too_large(cap: int) -> ApiError:
    return ApiError(400, f"the body is larger than the server's limit of {cap} bytes (--max-body)", "body_too_large")


def _parse_json(raw: bytes) -> Any:
    try:
        return parse_request_json(raw)
    except BodyProblem as exc:
        raise ApiError(400, str(exc), "invalid_json") from None


def _header(headers: Mapping[str, str], name: str, parse: Any) -> Any:
    text = headers.get(name)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise ApiError(400, str(exc), "invalid_header", name) from None


def pointer_to_param(error: ValidationError) -> str | None:
    """``/messages/0/content`` as ``messages[0].content``, the way OpenAI names a ``param``."""
    tokens = pointers.tokens(error.path)
    missing = re.fullmatch(r"'([^']+)' is required", error.message)
    if missing:  # name the absent field itself, not the object that lacks it
        tokens.append(missing.group(1))
    param = ""
    for token in tokens:
        param += f"[{token}]" if token.isdigit() else (f".{token}" if param else token)
    return param or None


def _redacted(headers: Sequence[tuple[str, str]] | Any) -> dict[str, str]:
    """The request's headers for the journal: every credential hidden, by the checker's own rule."""
    items = list(headers)
    secrets = secret_values(items)
    if not secrets:  # the common case: no credential to scrub from other values, no Redactor to build
        return {name: REDACTED if is_secret_header(name) else value for name, value in items}
    return Redactor(secrets).headers(items)


# -- the wire -------------------------------------------------------------------------------------


async def _play(writes: list[Write | Disconnect]) -> AsyncIterator[bytes | Disconnect]:
    """Yield each write at its planned time; waits are measured from the start, so they do not drift.

    Writes that are due together go out as one network write, as a server's send buffer would have them:
    a reply with no delay is one write, and a stream that fell behind (a thousand of them on one busy
    process) catches up in one write instead of paying a wake-up and a send for every chunk.
    """
    loop = asyncio.get_running_loop()
    due = loop.time()
    ready: list[bytes] = []
    for write in writes:
        if isinstance(write, Disconnect):
            if ready:
                yield b"".join(ready)
            yield write
            return
        due += write.delay
        if write.delay > 0 and due > loop.time():
            if ready:
                yield b"".join(ready)
                ready = []
            await asyncio.sleep(due - loop.time())
        ready.append(write.data)
    if ready:
        yield b"".join(ready)


class WireResponse(StreamingResponse):
    """A streamed response that can also end by dropping the connection, as a crashed server does.

    It stops as soon as the client leaves, as Starlette's does, but watches for that with two plain
    asyncio tasks: anyio's task group, which Starlette uses, cost more per response than everything
    else a short reply needs, and a thousand paced streams each keep one.
    """

    def __init__(
        self,
        writes: AsyncIterator[bytes | Disconnect],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__((), status_code=status_code, headers=headers, media_type=media_type)
        self.writes = writes
        self.dropped_by: str | None = None  # the fault that cut the response, if one did

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        watching = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)
        if self.dropped_by is not None:  # uvicorn then logs the cut at DEBUG, not as an ERROR
            mark_planned_drop(scope, self.dropped_by)
        failure = None if streaming.cancelled() else streaming.exception()
        if failure is not None and not isinstance(failure, OSError):  # a write to a client that left: no error
            raise failure

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for piece in self.writes:
            if isinstance(piece, Disconnect):
                logger.info("fault: dropping the connection mid-response")
                self.dropped_by = piece.fault
                return  # the server closes the connection: the client sees an incomplete body
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
