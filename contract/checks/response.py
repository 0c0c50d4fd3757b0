"""Response checks: the status, the media type and the JSON body of every answer, and its transport."""

from __future__ import annotations

from ..core.exchange import NOT_JSON, Exchange, Failure
from ..core.validate import EVENT_STREAM, JSON, media_type_of
from .blame import document_failure, error_gap, stream_gap, validation_failures
from .context import CheckContext, Verdict
from .helpers import documented_media, error_media, error_message, excerpt, one_line, request_is_valid, wants_stream


def not_a_server_error(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """No 5xx status, documented or not: a 5xx means the server failed on this request."""
    if exchange.status is None:
        return None
    if exchange.status < 500:
        return []
    return [
        Failure(
            "not_a_server_error",
            f"the server answered {exchange.status}: {excerpt(exchange)}",
            expected="a status below 500",
            seen=f"{exchange.status} {excerpt(exchange, 40)}",
        )
    ]


def status_code_documented(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The status is documented for the operation (exactly, as ``4XX``, or by ``default``)."""
    status = exchange.status
    if status is None:
        return None
    if ctx.operation.response_for(status) is not None:
        return []
    documented = ", ".join(ctx.operation.responses) or "none"
    gap = error_gap(ctx, status)
    if gap:
        return [
            document_failure("status_code_documented", gap, f"documented status (one of {documented})", str(status))
        ]
    return [
        Failure(
            "status_code_documented",
            f"status {status} is not documented (documented: {documented})",
            expected=f"one of {documented}",
            seen=str(status),
        )
    ]


def content_type_matches(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """``stream`` false: application/json; true or absent (the default): text/event-stream; errors: JSON."""
    status = exchange.status
    if status is None or exchange.transport_error:
        return None
    seen = media_type_of(exchange.content_type)
    response = ctx.operation.response_for(status)
    documented = [media_type_of(name) for name in response.content] if response else []
    if 200 <= status < 300:
        wanted = wants_stream(ctx, exchange)
        expected = None if wanted is None or exchange.request.kind == "negative" else (EVENT_STREAM if wanted else JSON)
    else:
        expected = JSON if not documented or JSON in documented else None
    if expected is not None and seen != expected:
        why = f"stream is {str(wants_stream(ctx, exchange)).lower()}" if 200 <= status < 300 else f"status {status}"
        return [
            Failure(
                "content_type_matches",
                f"{why}, so the body must be {expected}, not {seen or 'untyped'}",
                expected=expected,
                seen=exchange.content_type or "(no Content-Type)",
            )
        ]
    if response is not None and documented and seen not in documented:
        gap = stream_gap(ctx, exchange)
        if gap:
            return [document_failure("content_type_matches", gap, " or ".join(documented), seen)]
        return [
            Failure(
                "content_type_matches",
                f"content type {seen or 'none'} is not documented for status {status}",
                expected=" or ".join(documented),
                seen=exchange.content_type or "(none)",
            )
        ]
    return []


def response_body_valid(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """A 2xx JSON body is valid against the schema documented for its status and media type."""
    status = exchange.status
    if status is None or not 200 <= status < 300 or exchange.is_stream or exchange.transport_error:
        return None
    media = documented_media(ctx, status, exchange.content_type)
    if media is None:
        return None  # undocumented status or media type: status_code_documented / content_type_matches say so
    if exchange.json is NOT_JSON:
        return [
            Failure(
                "response_body_valid",
                f"the {status} body is not JSON: {excerpt(exchange)}",
                expected="a JSON body",
                seen=excerpt(exchange, 40),
            )
        ]
    errors = ctx.validator.validate_at(media.pointer, exchange.json)
    return validation_failures(ctx, "response_body_valid", errors, exchange.json)


def error_body_valid(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """A 4xx or 5xx body is the documented error object (``{"error": {"message", "type", ...}}``)."""
    status = exchange.status
    if status is None or status < 400 or exchange.transport_error:
        return None
    media = error_media(ctx, status)
    if media is None:
        return None  # the document has no error schema at all: status_code_documented blames it
    if exchange.json is NOT_JSON:
        return [
            Failure(
                "error_body_valid",
                f"the {status} body is not JSON: {excerpt(exchange)}",
                expected="a JSON error object",
                seen=excerpt(exchange, 40),
            )
        ]
    errors = ctx.validator.validate_at(media.pointer, exchange.json)
    return validation_failures(ctx, "error_body_valid", errors, exchange.json, prefix=f"{status} body ")


def negative_rejected(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """A request that breaks the contract gets a documented 4xx, never a 2xx or a 5xx."""
    status = exchange.status
    if exchange.request.kind != "negative" or status is None:
        return None
    rule = exchange.request.broken_rule or "one rule of the request schema"
    if 400 <= status < 500:
        if ctx.operation.response_for(status) is not None:
            return []
        gap = error_gap(ctx, status)
        if gap:
            return [document_failure("negative_rejected", gap, "a documented 4xx", str(status))]
        return [
            Failure(
                "negative_rejected",
                f"rejected with undocumented status {status} ({rule})",
                expected="a documented 4xx",
                seen=str(status),
            )
        ]
    return [
        Failure(
            "negative_rejected",
            f"a request that breaks {rule!r} got {status}, not a 4xx",
            expected="a documented 4xx with an error body",
            seen=f"{status} {excerpt(exchange, 40)}",
        )
    ]


def valid_request_accepted(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """Opt-in: a request valid against the schema gets a 2xx (by default refusals are only counted)."""
    status = exchange.status
    if status is None or status == 429 or not request_is_valid(ctx, exchange):
        return None  # 429 says "not now", not "not this request"
    if not 400 <= status < 500:
        return []
    return [
        Failure(
            "valid_request_accepted",
            f"a schema-valid request was refused with {status}: {error_message(exchange)}",
            expected="2xx",
            seen=f"{status} {excerpt(exchange, 40)}",
        )
    ]


def transport_ok(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """The exchange completed: no timeout, reset, garbage or size cap exceeded.

    A kept-alive connection the server closed after an answer, without ``Connection: close``, is
    blamed on that answer's request: the request that met the dead connection went through on a new one.
    """
    if exchange.closed_after is not None:
        return [
            Failure(
                "transport_ok",
                "the server closed the connection after answering this request, without saying so "
                "(no `Connection: close`); the next request sent on that connection got no answer",
                expected="Connection: close on a response after which the connection is closed",
                seen=f"HTTP {exchange.closed_after.status}, then the kept-alive connection closed",
                culprit=exchange.closed_after,
            )
        ]
    if not exchange.transport_error:
        return []
    return [
        Failure(
            "transport_ok",
            one_line(exchange.transport_error),
            expected="a complete response",
            seen=one_line(exchange.transport_error)[:60],
        )
    ]


def ttft_within_limit(ctx: CheckContext, exchange: Exchange) -> Verdict:
    """With ``--max-ttft-ms``: the first token (or, for JSON, the first byte) arrives in time."""
    timings = exchange.timings
    measured = timings.ttft_ms if timings.ttft_ms is not None else timings.ttfb_ms
    if ctx.max_ttft_ms is None or measured is None:
        return None
    if measured <= ctx.max_ttft_ms:
        return []
    return [
        Failure(
            "ttft_within_limit",
            f"first token after {measured:.0f} ms, over the {ctx.max_ttft_ms:.0f} ms limit",
            expected=f"<= {ctx.max_ttft_ms:.0f} ms",
            seen=f"{measured:.0f} ms",
        )
    ]
