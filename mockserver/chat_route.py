"""``POST /chat/completions``: check the request, find the reply, send it as a real server would.

Every request passes through the same steps, and each step that refuses
answers with the contract's Error body and a stable ``code``: body size and
type, JSON syntax, the contract, the mock's own headers, what a real server
refuses, the fixture lookup, and whether the fixture obeys the request. Only
then is a reply rendered, with its fault plan and pacing, into network writes
(``wire``). Each request is journaled once, whole, however it ended.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from contract.core import pointers
from contract.core.redaction import REDACTED, Redactor, is_secret_header, secret_values
from contract.core.validate import ValidationError

from . import faults as fault_plans
from .fallback import fallback_turn
from .faults import FaultPlan
from .matching import Match
from .prepared import ReplyBytes
from .protocol import arrival_time
from .randomness import RequestDraws
from .request_body import journal_body
from .request_reading import JSON_MEDIA, ApiError, ClientGone, check_content_type, parse_json, parsed_header, read_body
from .request_rules import (
    Refusal,
    dialect_problem,
    request_problem,
    shape_for_modalities,
    turn_mismatch,
    wants_audio,
)
from .sdk_hints import STREAM_DEFAULT_HEADER, warn_once_if_stream_omitted
from .state import JournalEntry, MockState
from .stream import (
    DEFAULT_MODEL,
    NO_DELAY,
    ReplyIdentity,
    choices_usage,
    compute_usage,
    layer_pacing,
    pacing_delays,
    parse_pacing_header,
    planned_timings,
)
from .turns import AssistantTurn, Pacing
from .wire import WireResponse, play

logger = logging.getLogger("mockserver")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MAX_NEAR_MISSES = 3
MAX_LABEL_HEADER = 400  # characters of X-Mock-Fixture; the journal keeps the whole near miss

T = TypeVar("T")


@dataclass
class Reply:
    """What was decided for one request, for the response and the journal."""

    turn: AssistantTurn
    label: str  # "name (file:line)" of the turn, or "fallback"
    pacing: Pacing | None = None
    more_choices: tuple[AssistantTurn, ...] = ()  # choices 1, 2... when the request asks for ``n``


@dataclass(frozen=True)
class NoMatch:
    """No fixture answers the request (and no fallback is on): the nearest turns, with why each missed."""

    near_misses: list[str]

    def error(self, fixture_count: int) -> ApiError:
        closest = (
            "".join(f"\n  - {miss}" for miss in self.near_misses) if self.near_misses else " no fixture comes close"
        )
        return ApiError(
            400,
            f"no fixture matches this request ({fixture_count} loaded); closest:{closest}",
            "no_fixture_match",
            "messages",
        )


async def chat_completions(state: MockState, request: Request) -> Response:
    await state.admission.enter()
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}
    entry = JournalEntry(time.time(), request.method, request.scope["path"], _redacted(headers.items()))
    try:
        response = await _answer(state, request, headers, entry)
        entry.status = response.status_code
    except ApiError as exc:
        entry.status, entry.error = exc.status, {"code": exc.code, "message": exc.message}
        raise
    except ClientGone as gone:
        entry.error = {"code": "client_disconnected", "message": str(gone)}
        raise
    except Exception:
        entry.status = 500
        raise
    finally:  # journaled once, complete: a store shared by several workers takes whole records
        state.store.record(entry.as_json())
    return response


async def _answer(state: MockState, request: Request, headers: dict[str, str], entry: JournalEntry) -> Response:
    check_content_type(headers)
    raw = await read_body(request, headers, state.settings.max_body)
    entry.body = raw[:2000].decode("utf-8", "replace")  # replaced by the parsed body once it parses
    body = parse_json(raw)
    entry.body = journal_body(body, len(raw))
    errors = state.validator.validate_request(body)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError(
            400, f"the request breaks the contract: {errors[0]}{more}", "invalid_request", pointer_to_param(errors[0])
        )
    header_pacing = parsed_header(headers, "x-mock-pacing", parse_pacing_header)
    header_fault = parsed_header(headers, "x-mock-fault", fault_plans.parse_fault_header)
    refusal = request_problem(body) or dialect_problem(body, state.dialect)
    if refusal is not None:
        raise ApiError(400, refusal.message, refusal.code, refusal.param)
    draws = state.next_draws()
    reply = await _find_reply(state, body, entry)
    if isinstance(reply, NoMatch):
        if state.unmatched is not None:  # --record-missing: the upstream answers, and is recorded
            entry.fixture = "upstream"
            return await state.unmatched.forward(request, raw)
        refused = reply.error(state.fixture_count)
        logger.warning("%s", refused.message)
        raise refused
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
    entry.fault = plan.describe() if plan else None
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
        writes = fault_plans.body_writes(content, plan)
        return WireResponse(play(writes, arrival_time(request.scope)), media_type=JSON_MEDIA, headers=headers)
    pacing = NO_DELAY if state.settings.no_delay else layer_pacing(reply.pacing, state.settings.pacing)
    if header_pacing is not None:
        pacing = layer_pacing(header_pacing, pacing)
    delays = pacing_delays(rendered.paced, pacing, draws.rng if pacing.jitter else None)
    writes = fault_plans.stream_writes(rendered.events, delays, plan, identity.id)
    entry.timings = planned_timings(rendered.paced, delays, writes)
    return WireResponse(
        play(writes, arrival_time(request.scope)),
        media_type="text/event-stream; charset=utf-8",
        headers=headers | SSE_HEADERS,
    )


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


async def _off_the_loop_if(slow: bool, work: Callable[..., T], *args: Any) -> T:
    """Run ``work`` in a thread when it may take long (synthesising audio takes up to half a second), so
    other clients' streams keep their pacing; quick work stays on the loop, where a thread would only cost."""
    return await asyncio.to_thread(work, *args) if slow else work(*args)


async def _find_reply(state: MockState, body: dict[str, Any], entry: JournalEntry) -> Reply | NoMatch:
    """The fixture turn (or the fallback's) that answers ``body``, with ``n`` one turn per choice; else NoMatch.

    A fixture turn answers every choice alike, as a model at temperature 0 would; the fallback makes up
    a different reply for each.
    """
    count = state.dialect.choice_count(body)
    found = state.index.lookup(body)
    if isinstance(found, Match):
        fixture = found.fixture
        play_number = state.store.take_play(fixture.name, found.turn_index)
        scenario = fixture.scenarios.get(found.turn_index)
        turn = scenario.step_at(play_number) if scenario is not None else found.turn
        entry.fixture, entry.turn, entry.play = fixture.name, found.turn_index, play_number + 1
        label = f"{fixture.name} ({_in_folder(state, turn.source or str(fixture.source))})"
        return Reply(turn, label, fixture.pacing, (turn,) * (count - 1))
    near = [_in_folder(state, str(miss)) for miss in found[:MAX_NEAR_MISSES]]
    entry.near_misses = near
    if not state.settings.fallback:
        return NoMatch(near)
    seed = state.settings.seed
    made_up = await asyncio.to_thread(  # may search for an instance
        lambda: [fallback_turn(body, seed + choice) for choice in range(count)]
    )
    for turn_or_refusal in made_up:
        if isinstance(turn_or_refusal, Refusal):
            raise ApiError(turn_or_refusal.status, turn_or_refusal.message, turn_or_refusal.code, turn_or_refusal.param)
    entry.fixture = "fallback"
    turns = [turn for turn in made_up if not isinstance(turn, Refusal)]
    return Reply(turns[0], fallback_label(near), None, tuple(turns[1:]))


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
