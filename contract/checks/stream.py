"""Stream checks: the Server-Sent Events framing and each chunk, one event at a time."""

from __future__ import annotations

from typing import Any

from ..core.exchange import NOT_JSON, Exchange, Failure
from ..core.validate import EVENT_STREAM, short_json
from .blame import document_failure, stream_gap, validation_failures
from .context import MAX_FAILURES_PER_CHECK, CheckContext, Verdict
from .helpers import choices_of, documented_media, event_chunks, one_line, terminator_for


def sse_framing(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Strict Server-Sent Events framing: every problem the parser found, with its byte offset."""
    if not exchange.is_stream:
        return None
    return [
        Failure("sse_framing", f"byte {p.offset}: {one_line(p.message)}", expected="well-framed events", seen=p.kind)
        for p in exchange.sse_problems
    ]


def chunks_valid(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Each event's data is JSON and valid against the documented chunk schema."""
    if not exchange.is_stream or exchange.status is None:
        return None
    media = documented_media(ctx, exchange.status, EVENT_STREAM)
    failures: list[Failure] = []
    if media is None:
        gap = stream_gap(ctx, exchange)
        if gap:
            failures.append(document_failure("chunks_valid", gap, "a documented chunk schema", EVENT_STREAM))
    seen_errors: set[tuple[str, str]] = set()
    for index, data in event_chunks(ctx, exchange):
        if len(failures) >= MAX_FAILURES_PER_CHECK:
            break
        if data is NOT_JSON:
            raw = exchange.events[index].data
            failures.append(
                Failure(
                    "chunks_valid",
                    f"event {index}: data is not JSON: {short_json(raw, 50)}",
                    expected="JSON data",
                    seen=short_json(raw, 40),
                )
            )
            continue
        if media is None:
            continue
        errors = [e for e in ctx.validator.validate_at(media.pointer, data) if (e.path, e.message) not in seen_errors]
        seen_errors.update((e.path, e.message) for e in errors)
        failures.extend(validation_failures(ctx, "chunks_valid", errors, data, prefix=f"event {index} "))
    return failures[:MAX_FAILURES_PER_CHECK]


def stream_terminated(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The stream ends with ``data: [DONE]`` and no event follows it."""
    if not exchange.is_stream or exchange.transport_error or exchange.status is None:
        return None
    terminator = terminator_for(ctx, exchange.status)
    positions = [i for i, event in enumerate(exchange.events) if event.data == terminator]
    if not positions:
        last = exchange.events[-1].data if exchange.events else ""
        return [
            Failure(
                "stream_terminated",
                f"the stream ended without data: {terminator} ({len(exchange.events)} events)",
                expected=f"data: {terminator}",
                seen=f"last event {short_json(last, 40)}" if exchange.events else "no events",
            )
        ]
    after = len(exchange.events) - positions[0] - 1
    if after:
        extra = exchange.events[positions[0] + 1].data
        return [
            Failure(
                "stream_terminated",
                f"{after} event(s) after data: {terminator}",
                expected=f"nothing after {terminator}",
                seen=short_json(extra, 40),
            )
        ]
    return []


def consistent_ids(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Every chunk carries the same ``id``, ``created`` and ``model``."""
    if not exchange.is_stream or exchange.status is None:
        return None
    failures = []
    for name in ("id", "created", "model"):
        first: Any = None
        for index, chunk in event_chunks(ctx, exchange):
            if not isinstance(chunk, dict) or name not in chunk:
                continue
            if first is None:
                first = (index, chunk[name])
            elif chunk[name] != first[1]:
                failures.append(
                    Failure(
                        "consistent_ids",
                        f"event {index}: {name} {short_json(chunk[name], 30)} "
                        f"differs from {short_json(first[1], 30)} in event {first[0]}",
                        expected=short_json(first[1], 40),
                        seen=short_json(chunk[name], 40),
                    )
                )
                break
    return failures


def role_first(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The first delta of each choice carries ``role: assistant``."""
    if not exchange.is_stream or exchange.status is None:
        return None
    seen_choices: set[int] = set()
    failures = []
    for index, chunk in event_chunks(ctx, exchange):
        for position, choice in choices_of(chunk):
            number = choice.get("index", position)
            if number in seen_choices or not isinstance(choice.get("delta"), dict):
                continue
            seen_choices.add(number)
            role = choice["delta"].get("role")
            if role != "assistant":
                failures.append(
                    Failure(
                        "role_first",
                        f"event {index}: the first delta of choice {number} has role {short_json(role)}",
                        expected='"assistant"',
                        seen=short_json(role),
                    )
                )
    return failures


def finish_reason_once(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Each choice has exactly one non-null ``finish_reason``, in its last delta."""
    if not exchange.is_stream or exchange.transport_error or exchange.status is None:
        return None
    reasons: dict[Any, list[tuple[int, Any]]] = {}
    last_seen: dict[Any, int] = {}
    for index, chunk in event_chunks(ctx, exchange):
        for position, choice in choices_of(chunk):
            number = choice.get("index", position)
            last_seen[number] = index
            if choice.get("finish_reason") is not None:
                reasons.setdefault(number, []).append((index, choice["finish_reason"]))
    failures = []
    for number, last in last_seen.items():
        found = reasons.get(number, [])
        if not found:
            failures.append(
                Failure(
                    "finish_reason_once",
                    f"choice {number} never gets a finish_reason",
                    expected="one finish_reason",
                    seen="none",
                )
            )
        elif len(found) > 1:
            failures.append(
                Failure(
                    "finish_reason_once",
                    f"choice {number} gets {len(found)} finish_reasons (events {', '.join(str(i) for i, _ in found)})",
                    expected="exactly one",
                    seen=short_json([reason for _, reason in found], 40),
                )
            )
        elif found[0][0] != last:
            failures.append(
                Failure(
                    "finish_reason_once",
                    f"choice {number}: finish_reason in event {found[0][0]} but its deltas go on until event {last}",
                    expected="finish_reason in the last delta",
                    seen=f"event {found[0][0]}",
                )
            )
    return failures


def usage_chunk_as_asked(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Where the dialect sends usage only when asked (``x-usage-chunk``, the ``openai`` profile): a chunk with no
    choices only with ``stream_options.include_usage``, and usage in the stream when it is set.

    A chunk with no choices that nobody asked for breaks the openai-python README's own loop
    (``chunk.choices[0]`` raises IndexError); usage asked for and not sent leaves a client's cost count empty.
    """
    body = exchange.request.body
    status = exchange.status
    if (
        not exchange.is_stream
        or exchange.transport_error
        or status is None
        or not 200 <= status < 300
        or not isinstance(body, dict)
        or exchange.request.kind == "negative"
        or not ctx.dialect.usage_when_asked
    ):
        return None
    asked = ctx.dialect.sends_usage_chunk(body)
    chunks = [(index, data) for index, data in event_chunks(ctx, exchange) if isinstance(data, dict)]
    if not asked:
        return [
            Failure(
                "usage_chunk_as_asked",
                f"event {index} has no choices (a usage chunk), but the request did not set "
                "stream_options.include_usage; a client that reads chunk.choices[0] fails on it",
                expected="a choice in every chunk",
                seen=short_json(data, 60),
            )
            for index, data in chunks
            if data.get("choices") == []
        ][:1]
    terminator = terminator_for(ctx, status)
    ended = any(event.data == terminator for event in exchange.events)
    if ended and not any(isinstance(data.get("usage"), dict) for _, data in chunks):
        return [
            Failure(
                "usage_chunk_as_asked",
                "stream_options.include_usage is true, but no chunk of the stream carries usage",
                expected="a usage chunk before the terminator",
                seen=f"{len(chunks)} chunks without usage",
            )
        ]
    return []
