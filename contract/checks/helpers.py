"""What several checks read of an exchange: its chunks, its reply, the document's answers about it.

Also what the runner asks of an exchange beside the checks: whether the request
was valid, and whether its 4xx is a refusal rather than a failure.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from ..core import pointers
from ..core.exchange import NOT_JSON, Exchange
from ..core.semantics import DONE, AssembledReply, assemble_exchange, read_exchange
from ..core.spec import DOCUMENT_URI, MediaSchema, pointer_join
from ..core.validate import EVENT_STREAM, JSON, media_type_of, pick_media, short_json
from .context import CheckContext


def request_is_valid(ctx: CheckContext, exchange: Exchange) -> bool:
    """Whether the request sent was valid against the document (so a 4xx for it is a refusal)."""
    request = exchange.request
    if request.kind == "negative" or request.body is None:
        return False
    content_type = header_value(request.headers, "content-type") or JSON
    media = pick_media(ctx.operation.request_body, content_type)
    return media is not None and ctx.validator.is_valid_at(media.pointer, request.body)


def is_refusal(ctx: CheckContext, exchange: Exchange) -> bool:
    """A schema-valid request answered with a documented 4xx and a valid error body: counted, not failed."""
    status = exchange.status
    if status is None or not 400 <= status < 500 or status == 429 or not request_is_valid(ctx, exchange):
        return False
    media = error_media(ctx, status)
    return (
        ctx.operation.response_for(status) is not None
        and media is not None
        and exchange.json is not NOT_JSON
        and ctx.validator.is_valid_at(media.pointer, exchange.json)
    )


def event_chunks(ctx: CheckContext, exchange: Exchange) -> list[tuple[int, Any]]:
    """(event index, parsed data) of every event before the terminator (see semantics.chunk_data)."""
    return read_exchange(exchange, terminator_for(ctx, exchange.status or 200)).chunks


def assembled_reply(ctx: CheckContext, exchange: Exchange) -> tuple[AssembledReply | None, dict[str, Any]]:
    """The assembled reply and the request, when a semantic check can judge them."""
    request = exchange.request.body
    status = exchange.status
    if (
        not isinstance(request, dict)
        or exchange.request.kind == "negative"
        or status is None
        or not 200 <= status < 300
        or exchange.transport_error
    ):
        return None, {}
    reply = assemble_exchange(exchange, terminator_for(ctx, status))
    return reply, request if reply is not None else {}


def answering_choices(reply: AssembledReply) -> list[Any]:
    """Choices that ended normally (a truncated or filtered answer owes nothing to the request)."""
    return [c for c in reply.choices.values() if c.finish_reason not in ("length", "content_filter")]


def offered_tools(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tools: dict[str, dict[str, Any]] = {}
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tools[function["name"]] = function
    return tools


def named_tool(choice: Any) -> str | None:
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return name if isinstance(name, str) else None
    return None


def schema_problem(schema: dict[str, Any], instance: Any) -> str | None:
    try:
        error = best_match(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    except jsonschema.exceptions.SchemaError as exc:  # the request's own schema is broken
        return f"the schema itself is invalid ({exc.message[:60]})"
    if error is None:
        return None
    where = pointer_join("", *error.absolute_path) or "/"
    return one_line(f"{where}: {error.message}")[:160]


def decode_base64(parts: list[str]) -> bytes | None:
    """Audio deltas are either independent base64 pieces or slices of one string: accept both."""
    for candidates in (parts, ["".join(parts)]):
        try:
            return b"".join(base64.b64decode(part, validate=True) for part in candidates)
        except (binascii.Error, ValueError):
            continue
    return None


def wav_problem(data: bytes) -> str | None:
    try:
        with wave.open(io.BytesIO(data), "rb") as audio:
            if audio.getnframes() <= 0:
                return "no frames"
    except (wave.Error, EOFError) as exc:
        return str(exc) or type(exc).__name__
    return None


def choices_of(chunk: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
        return []
    return [(i, c) for i, c in enumerate(chunk["choices"]) if isinstance(c, dict)]


def stream_default(ctx: CheckContext) -> bool:
    """What a request without ``stream`` asks for, by the document (``false`` when it gives no default)."""
    default = (request_property(ctx, "stream") or {}).get("default", False)
    return default if isinstance(default, bool) else False


def stream_terminator(ctx: CheckContext) -> str:
    """The data that ends a successful stream (``x-sse-terminator``; ``[DONE]`` when the document is silent)."""
    return terminator_for(ctx, 200)


def wants_stream(ctx: CheckContext, exchange: Exchange) -> bool | None:
    """What the request asked for: its ``stream``, or the document's default; None if it cannot say."""
    body = exchange.request.body
    if not isinstance(body, dict):
        return None
    prop = request_property(ctx, "stream")
    if prop is None and "stream" not in body:
        return None
    value = body.get("stream", (prop or {}).get("default", False))
    return value if isinstance(value, bool) else None


def request_property(ctx: CheckContext, name: str) -> dict[str, Any] | None:
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


def documented_media(ctx: CheckContext, status: int, content_type: str) -> MediaSchema | None:
    response = ctx.operation.response_for(status)
    return pick_media(response.content, content_type) if response is not None else None


def error_media(ctx: CheckContext, status: int) -> MediaSchema | None:
    """The JSON schema for an error status; an undocumented one is held to the first documented error."""
    media = documented_media(ctx, status, JSON)
    if media is not None or ctx.operation.response_for(status) is not None:
        return media
    for key, response in ctx.operation.responses.items():
        if key[:1] in ("4", "5") or key == "default":
            for name, candidate in response.content.items():
                if media_type_of(name) == JSON:
                    return candidate
    return None


def terminator_for(ctx: CheckContext, status: int) -> str:
    media = documented_media(ctx, status, EVENT_STREAM)
    return media.terminator if media is not None and media.terminator else DONE


def header_value(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


value_at = pointers.value_at  # the checks read what an error points at through the one pointer walker


def excerpt(exchange: Exchange, limit: int = 60) -> str:
    if exchange.json is not NOT_JSON:
        return short_json(exchange.json, limit)
    text = exchange.body[: limit * 2].decode("utf-8", "replace")
    return short_json(text, limit) if text else "(empty body)"


def error_message(exchange: Exchange) -> str:
    body = exchange.json
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return short_json(body["error"].get("message"), 60)
    return excerpt(exchange, 60)


def one_line(text: str) -> str:
    return " ".join(text.split())
