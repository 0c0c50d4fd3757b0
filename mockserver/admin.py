"""The admin routes: health and models as a real server has them, and ``/__mock/...`` to see and steer the mock.

``GET /__mock/requests`` is the journal (``DELETE`` empties it),
``/__mock/fixtures`` lists the conversations served and takes new ones,
``DELETE /__mock/fixtures/{name}`` stops serving one, and ``POST /__mock/reset``
returns the mock to how it started. Each reads or changes the state only
through its store, so with ``--workers`` every process answers alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .fixtures import Fixture, FixtureError, fixture_from_dict
from .request_reading import ApiError, parse_json, read_body
from .state import API_SOURCE, MockState, fixture_summary
from .stream import DEFAULT_MODEL


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
        return JSONResponse({"fixtures": [fixture_summary(state, fixture) for fixture in state.store.fixtures]})
    body = parse_json(await read_body(request, request.headers, state.settings.max_body))
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
