"""The named checks: each a plain function over one exchange, registered in :data:`CHECKS`.

A check returns the ways the exchange broke the contract, as :class:`Failure`
records with a one-line message, what was expected and what was seen; an empty
list means it judged the exchange and found it right. A check that does not
apply to an exchange (a stream check on a JSON body, a semantic check on a
refusal) returns ``None``: it did not judge, and a run counts that apart, so a
check that judged nothing is reported as not exercised, never as passing.
Checks never raise on hostile data.

Blame: when a failure comes only from the document (an instance valid under two
branches of a ``oneOf``, a stream the document never describes, errors it never
documents), the failure is reported with ``blame="document"`` and the lint's
witness, because the server did nothing wrong and the fix belongs in the document.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Protocol, Sequence

import jsonschema
from jsonschema.exceptions import best_match

from .exchange import NOT_JSON, Exchange, Failure, parse_json
from .semantics import DONE, AssembledReply, assemble_exchange, read_exchange, read_once, requested_json_schema
from .spec import DOCUMENT_URI, MediaSchema, Operation, Spec, SpecError, pointer_join
from .validate import EVENT_STREAM, JSON, ContractValidator, ValidationError, media_type_of, pick_media, short_json

Scope = Literal["response", "stream", "semantics"]
Verdict = list[Failure] | None  # None: the check did not judge this exchange
MAX_FAILURES_PER_CHECK = 5  # per exchange: a broken stream of 500 events is one story, not 500
# Lint rules whose findings make a response unjudgeable by the document; their witness explains the failure.
AMBIGUITY_RULES = frozenset({"oneof-overlap", "ambiguous-response"})
STREAM_GAP_RULES = frozenset({"stream-not-documented"})
ERROR_GAP_RULES = frozenset({"no-error-responses"})
# Rules that say no real reply can validate at a place, with the values they are about.
INVALIDATING_RULES: dict[str, Callable[[Any], bool]] = {
    "null-forbidden": lambda value: value is None,
    "single-tool-call": lambda value: isinstance(value, list),
    "unsatisfiable": lambda value: True,
}
# What the document should have allowed, by rule, for the failure's "expected" line.
DEFECT_EXPECTATIONS = {
    "null-forbidden": "null allowed at {where} (real servers send null there)",
    "single-tool-call": "an array of tool calls at {where}",
    "unsatisfiable": "a satisfiable schema at {where}",
}


class Finding(Protocol):
    """What the checks read of a lint finding (``contract.lint.Finding``)."""

    level: str
    rule: str
    location: str
    message: str
    witness: Any


@dataclass(frozen=True)
class CheckContext:
    """What every check may consult besides the exchange itself."""

    spec: Spec
    validator: ContractValidator
    operation: Operation
    findings: Sequence[Finding] = ()
    max_ttft_ms: float | None = None
    accept_valid: bool = False  # the opt-in: schema-valid requests must be accepted
    counterpart: Exchange | None = None  # the same request sent with the other ``stream`` value

    @classmethod
    def for_spec(cls, spec: Spec, path: str = "/chat/completions", method: str = "post",
                 **options: Any) -> CheckContext:
        return cls(spec=spec, validator=ContractValidator(spec), operation=spec.operation(path, method), **options)


@dataclass(frozen=True)
class Check:
    name: str
    func: Callable[[CheckContext, Exchange], Verdict]
    description: str
    scope: Scope
    default: bool = True


@dataclass(frozen=True)
class _DocumentDefect:
    rule: str
    detail: str
    witness: Any


# -- response checks ---------------------------------------------------------------


def not_a_server_error(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """No 5xx status, documented or not: a 5xx means the server failed on this request."""
    if exchange.status is None:
        return None
    if exchange.status < 500:
        return []
    return [Failure("not_a_server_error", f"the server answered {exchange.status}: {_excerpt(exchange)}",
                    expected="a status below 500", seen=f"{exchange.status} {_excerpt(exchange, 40)}")]


def status_code_documented(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The status is documented for the operation (exactly, as ``4XX``, or by ``default``)."""
    status = exchange.status
    if status is None:
        return None
    if ctx.operation.response_for(status) is not None:
        return []
    documented = ", ".join(ctx.operation.responses) or "none"
    gap = _error_gap(ctx, status)
    if gap:
        return [_document_failure("status_code_documented", gap, f"documented status (one of {documented})",
                                  str(status))]
    return [Failure("status_code_documented", f"status {status} is not documented (documented: {documented})",
                    expected=f"one of {documented}", seen=str(status))]


def content_type_matches(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``stream`` false: application/json; true or absent (the default): text/event-stream; errors: JSON."""
    status = exchange.status
    if status is None or exchange.transport_error:
        return None
    seen = media_type_of(exchange.content_type)
    response = ctx.operation.response_for(status)
    documented = [media_type_of(name) for name in response.content] if response else []
    if 200 <= status < 300:
        wanted = _wants_stream(ctx, exchange)
        expected = None if wanted is None or exchange.request.kind == "negative" else (
            EVENT_STREAM if wanted else JSON)
    else:
        expected = JSON if not documented or JSON in documented else None
    if expected is not None and seen != expected:
        why = f"stream is {str(_wants_stream(ctx, exchange)).lower()}" if 200 <= status < 300 else f"status {status}"
        return [Failure("content_type_matches", f"{why}, so the body must be {expected}, not {seen or 'untyped'}",
                        expected=expected, seen=exchange.content_type or "(no Content-Type)")]
    if response is not None and documented and seen not in documented:
        gap = _stream_gap(ctx, exchange)
        if gap:
            return [_document_failure("content_type_matches", gap, " or ".join(documented), seen)]
        return [Failure("content_type_matches", f"content type {seen or 'none'} is not documented for status "
                        f"{status}", expected=" or ".join(documented), seen=exchange.content_type or "(none)")]
    return []


def response_body_valid(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """A 2xx JSON body is valid against the schema documented for its status and media type."""
    status = exchange.status
    if status is None or not 200 <= status < 300 or exchange.is_stream or exchange.transport_error:
        return None
    media = _documented_media(ctx, status, exchange.content_type)
    if media is None:
        return None  # undocumented status or media type: status_code_documented / content_type_matches say so
    if exchange.json is NOT_JSON:
        return [Failure("response_body_valid", f"the {status} body is not JSON: {_excerpt(exchange)}",
                        expected="a JSON body", seen=_excerpt(exchange, 40))]
    errors = ctx.validator.validate_at(media.pointer, exchange.json)
    return _validation_failures(ctx, "response_body_valid", errors, exchange.json)


def error_body_valid(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """A 4xx or 5xx body is the documented error object (``{"error": {"message", "type", ...}}``)."""
    status = exchange.status
    if status is None or status < 400 or exchange.transport_error:
        return None
    media = _error_media(ctx, status)
    if media is None:
        return None  # the document has no error schema at all: status_code_documented blames it
    if exchange.json is NOT_JSON:
        return [Failure("error_body_valid", f"the {status} body is not JSON: {_excerpt(exchange)}",
                        expected="a JSON error object", seen=_excerpt(exchange, 40))]
    errors = ctx.validator.validate_at(media.pointer, exchange.json)
    return _validation_failures(ctx, "error_body_valid", errors, exchange.json, prefix=f"{status} body ")


def negative_rejected(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """A request that breaks the contract gets a documented 4xx, never a 2xx or a 5xx."""
    status = exchange.status
    if exchange.request.kind != "negative" or status is None:
        return None
    rule = exchange.request.broken_rule or "one rule of the request schema"
    if 400 <= status < 500:
        if ctx.operation.response_for(status) is not None:
            return []
        gap = _error_gap(ctx, status)
        if gap:
            return [_document_failure("negative_rejected", gap, "a documented 4xx", str(status))]
        return [Failure("negative_rejected", f"rejected with undocumented status {status} ({rule})",
                        expected="a documented 4xx", seen=str(status))]
    return [Failure("negative_rejected", f"a request that breaks {rule!r} got {status}, not a 4xx",
                    expected="a documented 4xx with an error body", seen=f"{status} {_excerpt(exchange, 40)}")]


def valid_request_accepted(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Opt-in: a request valid against the schema gets a 2xx (by default refusals are only counted)."""
    status = exchange.status
    if status is None or status == 429 or not request_is_valid(ctx, exchange):
        return None  # 429 says "not now", not "not this request"
    if not 400 <= status < 500:
        return []
    return [Failure("valid_request_accepted", f"a schema-valid request was refused with {status}: "
                    f"{_error_message(exchange)}", expected="2xx", seen=f"{status} {_excerpt(exchange, 40)}")]


def transport_ok(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The exchange completed: no timeout, reset, garbage or size cap exceeded."""
    if not exchange.transport_error:
        return []
    return [Failure("transport_ok", _one_line(exchange.transport_error), expected="a complete response",
                    seen=_one_line(exchange.transport_error)[:60])]


def ttft_within_limit(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """With ``--max-ttft-ms``: the first token (or, for JSON, the first byte) arrives in time."""
    timings = exchange.timings
    measured = timings.ttft_ms if timings.ttft_ms is not None else timings.ttfb_ms
    if ctx.max_ttft_ms is None or measured is None:
        return None
    if measured <= ctx.max_ttft_ms:
        return []
    return [Failure("ttft_within_limit", f"first token after {measured:.0f} ms, over the {ctx.max_ttft_ms:.0f} ms "
                    "limit", expected=f"<= {ctx.max_ttft_ms:.0f} ms", seen=f"{measured:.0f} ms")]


# -- stream checks -------------------------------------------------------------------


def sse_framing(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Strict Server-Sent Events framing: every problem the parser found, with its byte offset."""
    if not exchange.is_stream:
        return None
    return [Failure("sse_framing", f"byte {p.offset}: {_one_line(p.message)}", expected="well-framed events",
                    seen=p.kind) for p in exchange.sse_problems]


def chunks_valid(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Each event's data is JSON and valid against the documented chunk schema."""
    if not exchange.is_stream or exchange.status is None:
        return None
    media = _documented_media(ctx, exchange.status, EVENT_STREAM)
    failures: list[Failure] = []
    if media is None:
        gap = _stream_gap(ctx, exchange)
        if gap:
            failures.append(_document_failure("chunks_valid", gap, "a documented chunk schema", EVENT_STREAM))
    seen_errors: set[tuple[str, str]] = set()
    for index, data in _chunks(ctx, exchange):
        if len(failures) >= MAX_FAILURES_PER_CHECK:
            break
        if data is NOT_JSON:
            raw = exchange.events[index].data
            failures.append(Failure("chunks_valid", f"event {index}: data is not JSON: {short_json(raw, 50)}",
                                    expected="JSON data", seen=short_json(raw, 40)))
            continue
        if media is None:
            continue
        errors = [e for e in ctx.validator.validate_at(media.pointer, data)
                  if (e.path, e.message) not in seen_errors]
        seen_errors.update((e.path, e.message) for e in errors)
        failures.extend(_validation_failures(ctx, "chunks_valid", errors, data, prefix=f"event {index} "))
    return failures[:MAX_FAILURES_PER_CHECK]


def stream_terminated(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The stream ends with ``data: [DONE]`` and no event follows it."""
    if not exchange.is_stream or exchange.transport_error or exchange.status is None:
        return None
    terminator = _terminator(ctx, exchange.status)
    positions = [i for i, event in enumerate(exchange.events) if event.data == terminator]
    if not positions:
        last = exchange.events[-1].data if exchange.events else ""
        return [Failure("stream_terminated", f"the stream ended without data: {terminator} "
                        f"({len(exchange.events)} events)", expected=f"data: {terminator}",
                        seen=f"last event {short_json(last, 40)}" if exchange.events else "no events")]
    after = len(exchange.events) - positions[0] - 1
    if after:
        extra = exchange.events[positions[0] + 1].data
        return [Failure("stream_terminated", f"{after} event(s) after data: {terminator}",
                        expected=f"nothing after {terminator}", seen=short_json(extra, 40))]
    return []


def consistent_ids(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Every chunk carries the same ``id``, ``created`` and ``model``."""
    if not exchange.is_stream or exchange.status is None:
        return None
    failures = []
    for name in ("id", "created", "model"):
        first: Any = None
        for index, chunk in _chunks(ctx, exchange):
            if not isinstance(chunk, dict) or name not in chunk:
                continue
            if first is None:
                first = (index, chunk[name])
            elif chunk[name] != first[1]:
                failures.append(Failure("consistent_ids", f"event {index}: {name} {short_json(chunk[name], 30)} "
                                        f"differs from {short_json(first[1], 30)} in event {first[0]}",
                                        expected=short_json(first[1], 40), seen=short_json(chunk[name], 40)))
                break
    return failures


def role_first(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The first delta of each choice carries ``role: assistant``."""
    if not exchange.is_stream or exchange.status is None:
        return None
    seen_choices: set[int] = set()
    failures = []
    for index, chunk in _chunks(ctx, exchange):
        for position, choice in _choices(chunk):
            number = choice.get("index", position)
            if number in seen_choices or not isinstance(choice.get("delta"), dict):
                continue
            seen_choices.add(number)
            role = choice["delta"].get("role")
            if role != "assistant":
                failures.append(Failure("role_first", f"event {index}: the first delta of choice {number} has "
                                        f"role {short_json(role)}", expected='"assistant"', seen=short_json(role)))
    return failures


def finish_reason_once(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Each choice has exactly one non-null ``finish_reason``, in its last delta."""
    if not exchange.is_stream or exchange.transport_error or exchange.status is None:
        return None
    reasons: dict[Any, list[tuple[int, Any]]] = {}
    last_seen: dict[Any, int] = {}
    for index, chunk in _chunks(ctx, exchange):
        for position, choice in _choices(chunk):
            number = choice.get("index", position)
            last_seen[number] = index
            if choice.get("finish_reason") is not None:
                reasons.setdefault(number, []).append((index, choice["finish_reason"]))
    failures = []
    for number, last in last_seen.items():
        found = reasons.get(number, [])
        if not found:
            failures.append(Failure("finish_reason_once", f"choice {number} never gets a finish_reason",
                                    expected="one finish_reason", seen="none"))
        elif len(found) > 1:
            failures.append(Failure("finish_reason_once", f"choice {number} gets {len(found)} finish_reasons "
                                    f"(events {', '.join(str(i) for i, _ in found)})", expected="exactly one",
                                    seen=short_json([reason for _, reason in found], 40)))
        elif found[0][0] != last:
            failures.append(Failure("finish_reason_once", f"choice {number}: finish_reason in event {found[0][0]} "
                                    f"but its deltas go on until event {last}",
                                    expected="finish_reason in the last delta", seen=f"event {found[0][0]}"))
    return failures


# -- semantic checks -----------------------------------------------------------------


def tool_calls_assemble(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Tool-call fragments assemble per ``index`` into calls with an id, an offered name and JSON arguments."""
    reply, request = _reply(ctx, exchange)
    if reply is None or not (reply.problems or any(c.tool_calls for c in reply.choices.values())):
        return None  # no tool call to assemble
    failures = [Failure("tool_calls_assemble", _one_line(problem), expected="fragments that assemble",
                        seen=problem.split(": ", 1)[-1][:60]) for problem in reply.problems]
    tools = _offered_tools(request)
    for choice in reply.choices.values():
        for call in choice.tool_calls.values():
            where = f"choice {choice.index}, tool call {call.index}"
            if not call.id:
                failures.append(Failure("tool_calls_assemble", f"{where} has no id", expected="an id",
                                        seen="none"))
            if call.name not in tools:
                offered = ", ".join(tools) or "no tools"
                failures.append(Failure("tool_calls_assemble", f"{where} calls {short_json(call.name)}, not an "
                                        f"offered tool ({offered})", expected=offered[:60],
                                        seen=short_json(call.name)))
                continue
            arguments = parse_json(call.arguments)
            if arguments is NOT_JSON:
                failures.append(Failure("tool_calls_assemble", f"{where} ({call.name}): arguments are not JSON: "
                                        f"{short_json(call.arguments, 50)}", expected="JSON arguments",
                                        seen=short_json(call.arguments, 40)))
                continue
            function = tools[call.name]
            if function.get("strict") is True and isinstance(function.get("parameters"), dict):
                problem = _schema_problem(function["parameters"], arguments)
                if problem:
                    failures.append(Failure("tool_calls_assemble", f"{where} ({call.name}, strict): arguments "
                                            f"break the tool's parameters: {problem}",
                                            expected="arguments valid against parameters",
                                            seen=short_json(arguments, 40)))
    return failures[:MAX_FAILURES_PER_CHECK]


def tool_choice_honoured(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``tool_choice`` none: no call; required: at least one; a named function: only that one."""
    reply, request = _reply(ctx, exchange)
    if reply is None or "tool_choice" not in request or not _answering(reply):
        return None
    choice_value = request["tool_choice"]
    named = _named_tool(choice_value)
    failures = []
    for choice in _answering(reply):
        names = choice.tool_names
        if choice_value == "none" and names:
            failures.append(Failure("tool_choice_honoured", f'tool_choice is "none" but choice {choice.index} '
                                    f"calls {', '.join(names)}", expected="no tool calls",
                                    seen=short_json(names, 40)))
        elif choice_value == "required" and not names:
            failures.append(Failure("tool_choice_honoured", f'tool_choice is "required" but choice '
                                    f"{choice.index} answers with {choice.kind}", expected="at least one tool call",
                                    seen=choice.kind))
        elif named is not None and (not names or any(name != named for name in names)):
            failures.append(Failure("tool_choice_honoured", f"tool_choice names {named!r} but choice "
                                    f"{choice.index} calls {short_json(names)}", expected=f"calls to {named}",
                                    seen=short_json(names, 40) if names else choice.kind))
    return failures


def parallel_tool_calls_honoured(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``parallel_tool_calls: false``: at most one tool call per turn."""
    reply, request = _reply(ctx, exchange)
    if reply is None or request.get("parallel_tool_calls") is not False or not _offered_tools(request):
        return None  # without a tool offered, there is nothing to call in parallel
    return [Failure("parallel_tool_calls_honoured", f"parallel_tool_calls is false but choice {choice.index} makes "
                    f"{len(choice.tool_calls)} calls", expected="at most one tool call",
                    seen=short_json(choice.tool_names, 40))
            for choice in reply.choices.values() if len(choice.tool_calls) > 1]


def response_format_honoured(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``response_format`` json_schema: the content parses as JSON and is valid against that schema."""
    reply, request = _reply(ctx, exchange)
    schema = requested_json_schema(request) if reply is not None else None
    if reply is None or schema is None:
        return None
    answers = [c for c in _answering(reply) if c.kind not in ("tool_calls", "refusal")]
    if not answers:
        return None  # a tool call or a refusal owes the schema nothing
    failures = []
    for choice in answers:
        if choice.content is None:
            if choice.kind == "empty":
                failures.append(Failure("response_format_honoured", f"choice {choice.index} has no content to "
                                        "check against the requested json_schema", expected="JSON content",
                                        seen="no content"))
            continue
        value = parse_json(choice.content)
        if value is NOT_JSON:
            failures.append(Failure("response_format_honoured", f"choice {choice.index}: content is not JSON: "
                                    f"{short_json(choice.content, 50)}", expected="JSON content",
                                    seen=short_json(choice.content, 40)))
            continue
        problem = _schema_problem(schema, value)
        if problem:
            failures.append(Failure("response_format_honoured", f"choice {choice.index}: content breaks the "
                                    f"requested json_schema: {problem}", expected="content valid against the schema",
                                    seen=short_json(value, 40)))
    return failures


def audio_present(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``modalities`` with audio: the reply carries audio that base64-decodes (a WAV opens), with a transcript."""
    reply, request = _reply(ctx, exchange)
    modalities = request.get("modalities") if reply is not None else None
    if reply is None or not isinstance(modalities, list) or "audio" not in modalities:
        return None
    answers = [c for c in _answering(reply) if c.kind not in ("tool_calls", "refusal")]
    if not answers:
        return None  # a tool call or a refusal owes no audio
    audio_request = request.get("audio") if isinstance(request.get("audio"), dict) else {}
    wants_wav = audio_request.get("format") == "wav"
    failures = []
    for choice in answers:
        audio = choice.audio
        if audio is None or not audio.data_parts:
            failures.append(Failure("audio_present", f"modalities asks for audio but choice {choice.index} has "
                                    "no audio data", expected="audio.data", seen="none"))
            continue
        data = _decode_base64(audio.data_parts)
        if data is None:
            failures.append(Failure("audio_present", f"choice {choice.index}: audio data is not base64",
                                    expected="base64 audio", seen=short_json(audio.data_parts[0], 40)))
            continue
        if wants_wav or data[:4] == b"RIFF":
            problem = _wav_problem(data)
            if problem:
                failures.append(Failure("audio_present", f"choice {choice.index}: audio is not a WAV that opens: "
                                        f"{problem}", expected="a WAV file", seen=short_json(data[:12].hex(), 40)))
        if not audio.transcript.strip():
            failures.append(Failure("audio_present", f"choice {choice.index}: audio has no transcript",
                                    expected="a transcript", seen=short_json(audio.transcript)))
    return failures


def usage_consistent(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Usage counts are non-negative integers and total = prompt + completion."""
    reply, _ = _reply(ctx, exchange)
    if reply is None:
        return None
    if exchange.is_stream:
        usages = [chunk["usage"] for _, chunk in _chunks(ctx, exchange)
                  if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict)]
    else:
        usages = [reply.usage] if isinstance(reply.usage, dict) else []
    if not usages:
        return None  # usage is optional; there is nothing to add up
    failures = []
    for usage in usages:
        counts = {name: usage.get(name) for name in ("prompt_tokens", "completion_tokens", "total_tokens")}
        bad = {name: value for name, value in counts.items()
               if name in usage and (not isinstance(value, int) or isinstance(value, bool) or value < 0)}
        if bad:
            failures.append(Failure("usage_consistent", f"usage counts must be non-negative integers: "
                                    f"{short_json(bad)}", expected="integers >= 0", seen=short_json(bad, 40)))
        elif all(name in usage for name in counts) and counts["total_tokens"] != (
                counts["prompt_tokens"] + counts["completion_tokens"]):
            failures.append(Failure("usage_consistent", f"total_tokens {counts['total_tokens']} != prompt_tokens "
                                    f"{counts['prompt_tokens']} + completion_tokens {counts['completion_tokens']}",
                                    expected=str(counts["prompt_tokens"] + counts["completion_tokens"]),
                                    seen=str(counts["total_tokens"])))
    return failures[:1]


def stream_matches_nonstream(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The streamed and non-streamed answers to one request have the same shape (kind, tools, finish_reason)."""
    if ctx.counterpart is None:
        return None
    mine, _ = _reply(ctx, exchange)
    theirs, _ = _reply(ctx, ctx.counterpart)
    if mine is None or theirs is None:
        return None
    label = "streamed" if exchange.is_stream else "non-streamed"
    other = "non-streamed" if exchange.is_stream else "streamed"
    a, b = mine.choice(), theirs.choice()
    for what, left, right in (("kind of answer", a.kind, b.kind), ("tool names", a.tool_names, b.tool_names),
                              ("finish_reason", a.finish_reason, b.finish_reason)):
        if left != right:
            return [Failure("stream_matches_nonstream", f"{what}: {label} {short_json(left, 40)}, {other} "
                            f"{short_json(right, 40)}", expected=f"{other}: {short_json(right, 40)}",
                            seen=f"{label}: {short_json(left, 40)}")]
    return []


# -- registry ------------------------------------------------------------------------


def _register(func: Callable[[CheckContext, Exchange], Verdict], scope: Scope, default: bool = True) -> Check:
    description = (func.__doc__ or "").strip().splitlines()[0]
    return Check(func.__name__, func, description, scope, default)


CHECKS: dict[str, Check] = {check.name: check for check in (
    _register(not_a_server_error, "response"),
    _register(status_code_documented, "response"),
    _register(content_type_matches, "response"),
    _register(response_body_valid, "response"),
    _register(error_body_valid, "response"),
    _register(negative_rejected, "response"),
    _register(valid_request_accepted, "response", default=False),
    _register(transport_ok, "response"),
    _register(ttft_within_limit, "response"),
    _register(sse_framing, "stream"),
    _register(chunks_valid, "stream"),
    _register(stream_terminated, "stream"),
    _register(consistent_ids, "stream"),
    _register(role_first, "stream"),
    _register(finish_reason_once, "stream"),
    _register(tool_calls_assemble, "semantics"),
    _register(tool_choice_honoured, "semantics"),
    _register(parallel_tool_calls_honoured, "semantics"),
    _register(response_format_honoured, "semantics"),
    _register(audio_present, "semantics"),
    _register(usage_consistent, "semantics"),
    _register(stream_matches_nonstream, "semantics"),
)}


def default_checks() -> list[str]:
    return [name for name, check in CHECKS.items() if check.default]


def select_checks(include: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[str]:
    """The names ``--checks`` / ``--exclude-checks`` select; ``all`` selects every check."""
    wanted = list(include) if include is not None else default_checks()
    if "all" in wanted:
        wanted = list(CHECKS)
    excluded = list(exclude)
    unknown = [name for name in (*wanted, *excluded) if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r} (known: {', '.join(CHECKS)})")
    return [name for name in CHECKS if name in wanted and name not in excluded]


@dataclass(frozen=True)
class Outcome:
    """What the selected checks made of one exchange: the failures, and which checks judged it at all."""

    failures: list[Failure]
    judged: frozenset[str]


def run_checks(ctx: CheckContext, exchange: Exchange, selected: Iterable[str]) -> list[Failure]:
    """Run the selected checks (``valid_request_accepted`` too when ``ctx.accept_valid``) in registry order."""
    return judge(ctx, exchange, selected).failures


def judge(ctx: CheckContext, exchange: Exchange, selected: Iterable[str]) -> Outcome:
    """Run the selected checks and note which of them judged the exchange (returned a list, not ``None``)."""
    names = set(selected)
    if ctx.accept_valid:
        names.add("valid_request_accepted")
    unknown = names - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check {sorted(unknown)[0]!r} (known: {', '.join(CHECKS)})")
    failures: list[Failure] = []
    judged: set[str] = set()
    with read_once(exchange, ctx.counterpart):  # every check reads the same parsed events and reply
        for name, check in CHECKS.items():
            if name in names:
                verdict = check.func(ctx, exchange)
                if verdict is not None:
                    judged.add(name)
                    failures.extend(verdict)
    return Outcome(failures, frozenset(judged))


def checks_table() -> str:
    """The Markdown table of checks, generated from the registry so the README cannot drift."""
    rows = ["| Check | Scope | Default | What it asserts |", "|---|---|---|---|"]
    for c in CHECKS.values():
        description = c.description.replace("``", "`").replace("|", "/")
        rows.append(f"| `{c.name}` | {c.scope} | {'on' if c.default else 'off'} | {description} |")
    return "\n".join(rows)


def request_is_valid(ctx: CheckContext, exchange: Exchange) -> bool:
    """Whether the request sent was valid against the document (so a 4xx for it is a refusal)."""
    request = exchange.request
    if request.kind == "negative" or request.body is None:
        return False
    content_type = _header(request.headers, "content-type") or JSON
    media = pick_media(ctx.operation.request_body, content_type)
    return media is not None and ctx.validator.is_valid_at(media.pointer, request.body)


def is_refusal(ctx: CheckContext, exchange: Exchange) -> bool:
    """A schema-valid request answered with a documented 4xx and a valid error body: counted, not failed."""
    status = exchange.status
    if status is None or not 400 <= status < 500 or status == 429 or not request_is_valid(ctx, exchange):
        return False
    media = _error_media(ctx, status)
    return (ctx.operation.response_for(status) is not None and media is not None and exchange.json is not NOT_JSON
            and ctx.validator.is_valid_at(media.pointer, exchange.json))


# -- blame ----------------------------------------------------------------------------


def _validation_failures(ctx: CheckContext, check: str, errors: list[ValidationError], instance: Any,
                         prefix: str = "") -> list[Failure]:
    failures = []
    for error in errors[:MAX_FAILURES_PER_CHECK]:
        seen = short_json(_at(instance, error.path), 40)
        ambiguity = _ambiguity(ctx, error, instance)
        defect = ambiguity or _known_defect(ctx, error, instance)
        if defect:
            expected = (f"one branch of the oneOf at {error.schema_location}" if ambiguity else
                        DEFECT_EXPECTATIONS.get(defect.rule, "a document that admits this value").format(
                            where=error.path or "/"))
            failures.append(_document_failure(check, defect, expected, seen))
        else:
            failures.append(Failure(check, _one_line(f"{prefix}{error}"), expected=f"valid at {error.schema_location}",
                                    seen=seen))
    return failures


def _ambiguity(ctx: CheckContext, error: ValidationError, instance: Any) -> _DocumentDefect | None:
    """The error is a ``oneOf`` that the instance matches more than once: the document cannot tell."""
    location = error.schema_location
    if not location.endswith("/oneOf"):
        return None
    try:
        branches = ctx.spec.resolve(location)
    except SpecError:  # a location the validator made up for a broken pointer
        return None
    value = _at(instance, error.path)
    if not isinstance(branches, list):
        return None
    matching = [i for i in range(len(branches)) if ctx.validator.is_valid_at(pointer_join(location, i), value)]
    if len(matching) < 2:
        return None
    finding = _finding(ctx, AMBIGUITY_RULES, location)
    witness = finding.witness if finding is not None and finding.witness is not None else value
    rule = finding.rule if finding is not None else "oneof-overlap"
    return _DocumentDefect(rule, f"{error.path or '/'} is valid under {len(matching)} branches of the oneOf at "
                                 f"{location}, which must match exactly one", witness)


def _known_defect(ctx: CheckContext, error: ValidationError, instance: Any) -> _DocumentDefect | None:
    """The error sits where lint found that no real reply can validate (a forbidden null, one tool call)."""
    value = _at(instance, error.path)
    for finding in ctx.findings:
        applies = INVALIDATING_RULES.get(getattr(finding, "rule", ""))
        if applies is not None and applies(value) and _related(str(finding.location), error.schema_location):
            return _DocumentDefect(finding.rule, f"{error.path or '/'}: {error.message}", finding.witness)
    return None


def _stream_gap(ctx: CheckContext, exchange: Exchange) -> _DocumentDefect | None:
    """A stream was asked for (explicitly or by default) but the document never describes one."""
    status = exchange.status
    if not exchange.is_stream or status is None or not 200 <= status < 300:
        return None
    if _documented_media(ctx, status, EVENT_STREAM) is not None or _wants_stream(ctx, exchange) is not True:
        return None
    response = ctx.operation.response_for(status)
    finding = _finding(ctx, STREAM_GAP_RULES, response.pointer if response else ctx.operation.pointer)
    witness = finding.witness if finding is not None and finding.witness is not None else exchange.request.body
    body = exchange.request.body
    asked = "stream is true" if isinstance(body, dict) and "stream" in body else "stream is absent (default true)"
    return _DocumentDefect(finding.rule if finding else "stream-not-documented",
                           f"{asked} but status {status} documents no text/event-stream to describe the reply",
                           witness)


def _error_gap(ctx: CheckContext, status: int) -> _DocumentDefect | None:
    """A 4xx the document cannot describe because it documents no client error at all."""
    if not 400 <= status < 500:
        return None
    if any(key == "default" or key[:1] == "4" for key in ctx.operation.responses):
        return None
    finding = _finding(ctx, ERROR_GAP_RULES, pointer_join(ctx.operation.pointer, "responses"))
    witness = finding.witness if finding is not None and finding.witness is not None else {"status": status}
    return _DocumentDefect(finding.rule if finding else "no-error-responses",
                           f"the operation documents no 4xx response, so a refusal ({status}) cannot conform", witness)


def _finding(ctx: CheckContext, rules: frozenset[str], location: str) -> Finding | None:
    """The lint finding of one of ``rules`` nearest to ``location`` (the same place, above or below it)."""
    candidates = [f for f in ctx.findings if getattr(f, "rule", None) in rules]
    for finding in candidates:
        if _related(str(getattr(finding, "location", "")), location):
            return finding
    return candidates[0] if candidates and rules != AMBIGUITY_RULES else None


def _related(a: str, b: str) -> bool:
    a, b = _norm_pointer(a), _norm_pointer(b)
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _norm_pointer(pointer: str) -> str:
    pointer = pointer.removeprefix(DOCUMENT_URI).split(" ", 1)[0]
    return pointer.removeprefix("#").rstrip("/")


def _document_failure(check: str, defect: _DocumentDefect, expected: str, seen: str) -> Failure:
    message = (f"defect of the document, not the server ({defect.rule}): {defect.detail}; "
               f"witness {short_json(defect.witness, 80)}")
    return Failure(check, _one_line(message), expected=expected[:80], seen=seen, blame="document",
                   witness=defect.witness)


# -- helpers ---------------------------------------------------------------------------


def _chunks(ctx: CheckContext, exchange: Exchange) -> list[tuple[int, Any]]:
    """(event index, parsed data) of every event before the terminator (see semantics.chunk_data)."""
    return read_exchange(exchange, _terminator(ctx, exchange.status or 200)).chunks


def _reply(ctx: CheckContext, exchange: Exchange) -> tuple[AssembledReply | None, dict[str, Any]]:
    """The assembled reply and the request, when a semantic check can judge them."""
    request = exchange.request.body
    status = exchange.status
    if (not isinstance(request, dict) or exchange.request.kind == "negative" or status is None
            or not 200 <= status < 300 or exchange.transport_error):
        return None, {}
    reply = assemble_exchange(exchange, _terminator(ctx, status))
    return reply, request if reply is not None else {}


def _answering(reply: AssembledReply) -> list[Any]:
    """Choices that ended normally (a truncated or filtered answer owes nothing to the request)."""
    return [c for c in reply.choices.values() if c.finish_reason not in ("length", "content_filter")]


def _offered_tools(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools[function["name"]] = function
    return tools


def _named_tool(choice: Any) -> str | None:
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return name if isinstance(name, str) else None
    return None


def _schema_problem(schema: dict[str, Any], instance: Any) -> str | None:
    try:
        error = best_match(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    except jsonschema.exceptions.SchemaError as exc:  # the request's own schema is broken
        return f"the schema itself is invalid ({exc.message[:60]})"
    if error is None:
        return None
    where = pointer_join("", *error.absolute_path) or "/"
    return _one_line(f"{where}: {error.message}")[:160]


def _decode_base64(parts: list[str]) -> bytes | None:
    """Audio deltas are either independent base64 pieces or slices of one string: accept both."""
    for candidates in (parts, ["".join(parts)]):
        try:
            return b"".join(base64.b64decode(part, validate=True) for part in candidates)
        except (binascii.Error, ValueError):
            continue
    return None


def _wav_problem(data: bytes) -> str | None:
    try:
        with wave.open(io.BytesIO(data), "rb") as audio:
            if audio.getnframes() <= 0:
                return "no frames"
    except (wave.Error, EOFError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _choices(chunk: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
        return []
    return [(i, c) for i, c in enumerate(chunk["choices"]) if isinstance(c, dict)]


def stream_default(ctx: CheckContext) -> bool:
    """What a request without ``stream`` asks for, by the document (``false`` when it gives no default)."""
    default = (_request_property(ctx, "stream") or {}).get("default", False)
    return default if isinstance(default, bool) else False


def stream_terminator(ctx: CheckContext) -> str:
    """The data that ends a successful stream (``x-sse-terminator``; ``[DONE]`` when the document is silent)."""
    return _terminator(ctx, 200)


def _wants_stream(ctx: CheckContext, exchange: Exchange) -> bool | None:
    """What the request asked for: its ``stream``, or the document's default; None if it cannot say."""
    body = exchange.request.body
    if not isinstance(body, dict):
        return None
    prop = _request_property(ctx, "stream")
    if prop is None and "stream" not in body:
        return None
    value = body.get("stream", (prop or {}).get("default", False))
    return value if isinstance(value, bool) else None


def _request_property(ctx: CheckContext, name: str) -> dict[str, Any] | None:
    media = pick_media(ctx.operation.request_body, JSON)
    if media is None:
        return None
    node: Any = media.schema
    for _ in range(16):  # follow $ref chains
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            break
        node = ctx.spec.resolve(node["$ref"].removeprefix(DOCUMENT_URI))
    properties = node.get("properties") if isinstance(node, dict) else None
    prop = properties.get(name) if isinstance(properties, dict) else None
    return prop if isinstance(prop, dict) else None


def _documented_media(ctx: CheckContext, status: int, content_type: str) -> MediaSchema | None:
    response = ctx.operation.response_for(status)
    return pick_media(response.content, content_type) if response is not None else None


def _error_media(ctx: CheckContext, status: int) -> MediaSchema | None:
    """The JSON schema for an error status; an undocumented one is held to the first documented error."""
    media = _documented_media(ctx, status, JSON)
    if media is not None or ctx.operation.response_for(status) is not None:
        return media
    for key, response in ctx.operation.responses.items():
        if key[:1] in ("4", "5") or key == "default":
            for name, candidate in response.content.items():
                if media_type_of(name) == JSON:
                    return candidate
    return None


def _terminator(ctx: CheckContext, status: int) -> str:
    media = _documented_media(ctx, status, EVENT_STREAM)
    return media.terminator if media is not None and media.terminator else DONE


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _at(instance: Any, pointer: str) -> Any:
    if not pointer:
        return instance
    node = instance
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            return None
    return node


def _excerpt(exchange: Exchange, limit: int = 60) -> str:
    if exchange.json is not NOT_JSON:
        return short_json(exchange.json, limit)
    text = exchange.body[:limit * 2].decode("utf-8", "replace")
    return short_json(text, limit) if text else "(empty body)"


def _error_message(exchange: Exchange) -> str:
    body = exchange.json
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return short_json(body["error"].get("message"), 60)
    return _excerpt(exchange, 60)


def _one_line(text: str) -> str:
    return " ".join(text.split())
