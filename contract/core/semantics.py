"""What a reply means: a stream of chunks, or one response, assembled into the same record.

The semantic checks (tool calls, ``tool_choice``, ``response_format``, audio,
usage, stream versus non-stream) reason about the reply as a client sees it
once every delta is merged, so both shapes are reduced to :class:`AssembledReply`
and compared field by field. Assembly never raises on hostile data: what does
not fit is recorded in ``problems`` for a check to report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .exchange import NOT_JSON, Exchange, parse_json
from .sse import SSEEvent

DONE = "[DONE]"


def asks_for_json_schema(request: dict[str, Any]) -> bool:
    """Whether the request sets ``response_format: {type: json_schema}``."""
    response_format = request.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


def asks_for_json_object(request: dict[str, Any]) -> bool:
    """Whether the request sets ``response_format: {type: json_object}`` (the ``openai`` profile's JSON mode)."""
    response_format = request.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"


JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


def requested_json_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The schema a ``json_schema`` response format asks the reply's content to fit, if it gives one.

    ``json_object`` asks for one JSON object, whatever its keys: the schema ``{"type": "object"}``.
    The mock obeys it and the checks hold a server to it, so both read it from here.
    """
    if asks_for_json_object(request):
        return JSON_OBJECT_SCHEMA
    if not asks_for_json_schema(request):
        return None
    json_schema = request["response_format"].get("json_schema")
    schema = json_schema.get("schema") if isinstance(json_schema, dict) else None
    return schema if isinstance(schema, dict) else None


@dataclass
class AssembledToolCall:
    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class AssembledAudio:
    id: str | None = None
    data_parts: list[str] = field(default_factory=list)  # base64, one part per delta
    transcript: str = ""
    expires_at: int | None = None


@dataclass
class AssembledChoice:
    index: int
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: dict[int, AssembledToolCall] = field(default_factory=dict)
    audio: AssembledAudio | None = None
    finish_reason: str | None = None

    @property
    def kind(self) -> str:
        """What sort of answer this is: "tool_calls", "refusal", "text" or "empty"."""
        if self.tool_calls:
            return "tool_calls"
        if self.refusal:
            return "refusal"
        if self.content or (self.audio is not None and (self.audio.transcript or self.audio.data_parts)):
            return "text"
        return "empty"

    @property
    def tool_names(self) -> list[str]:
        return sorted(call.name or "" for call in self.tool_calls.values())


@dataclass
class AssembledReply:
    choices: dict[int, AssembledChoice] = field(default_factory=dict)
    usage: Any = None  # the last non-null usage object seen
    ids: list[str] = field(default_factory=list)  # every distinct ``id``, in order of appearance
    problems: list[str] = field(default_factory=list)  # fragments that do not assemble

    def choice(self, index: int = 0) -> AssembledChoice:
        return self.choices.get(index) or AssembledChoice(index)

    # The first choice, which is what almost every client reads.
    @property
    def content(self) -> str | None:
        return self.choice().content

    @property
    def refusal(self) -> str | None:
        return self.choice().refusal

    @property
    def tool_calls(self) -> dict[int, AssembledToolCall]:
        return self.choice().tool_calls

    @property
    def audio(self) -> AssembledAudio | None:
        return self.choice().audio

    @property
    def finish_reason(self) -> str | None:
        return self.choice().finish_reason


def chunk_data(events: Iterable[SSEEvent], terminator: str = DONE) -> list[tuple[int, Any]]:
    """(event index, parsed data) for every event before the terminator; unparseable data is NOT_JSON."""
    out: list[tuple[int, Any]] = []
    for index, event in enumerate(events):
        if event.data == terminator:
            break
        out.append((index, parse_json(event.data)))
    return out


def assemble_stream(events: Iterable[SSEEvent], terminator: str = DONE) -> AssembledReply:
    """Merge the deltas of a chunk stream the way an OpenAI-compatible client does."""
    return assemble_chunks(chunk_data(events, terminator))


def assemble_chunks(chunks: Iterable[tuple[int, Any]]) -> AssembledReply:
    """:func:`assemble_stream` over chunks already parsed by :func:`chunk_data`."""
    reply = AssembledReply()
    for event_index, chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        _note_id(reply, chunk)
        if chunk.get("usage") is not None:
            reply.usage = chunk["usage"]
        for position, choice in enumerate(_list(chunk.get("choices"))):
            if not isinstance(choice, dict):
                continue
            target = _choice_slot(reply, position, choice)
            delta = choice.get("delta")
            if isinstance(delta, dict):
                _merge_delta(reply, target, delta, event_index)
            if choice.get("finish_reason") is not None:
                target.finish_reason = choice["finish_reason"]
    return reply


def _choice_slot(reply: AssembledReply, position: int, choice: dict[str, Any]) -> AssembledChoice:
    """The record for a choice, keyed by its ``index`` (its position when the index is missing or not a number)."""
    index = choice.get("index", position)
    index = index if isinstance(index, int) else position
    return reply.choices.setdefault(index, AssembledChoice(index))


def assemble_message(body: Any) -> AssembledReply:
    """The same record from a non-stream ChatCompletionResponse (``choices[i].message``)."""
    reply = AssembledReply()
    if not isinstance(body, dict):
        return reply
    _note_id(reply, body)
    reply.usage = body.get("usage")
    for position, choice in enumerate(_list(body.get("choices"))):
        if not isinstance(choice, dict):
            continue
        target = _choice_slot(reply, position, choice)
        message = choice.get("message")
        if isinstance(message, dict):
            target.role = message.get("role") if isinstance(message.get("role"), str) else None
            target.content = message.get("content") if isinstance(message.get("content"), str) else None
            target.refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
            for call_position, call in enumerate(_list(message.get("tool_calls"))):
                if isinstance(call, dict):
                    function = _dict(call.get("function"))
                    arguments = function.get("arguments")
                    target.tool_calls[call_position] = AssembledToolCall(
                        call_position,
                        _str(call.get("id")),
                        _str(call.get("type")),
                        _str(function.get("name")),
                        arguments if isinstance(arguments, str) else "",
                    )
            audio = message.get("audio")
            if isinstance(audio, dict):
                target.audio = AssembledAudio(
                    _str(audio.get("id")),
                    [audio["data"]] if isinstance(audio.get("data"), str) else [],
                    _str(audio.get("transcript")) or "",
                    audio.get("expires_at") if isinstance(audio.get("expires_at"), int) else None,
                )
        target.finish_reason = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None
    return reply


def assemble_exchange(exchange: Exchange, terminator: str = DONE) -> AssembledReply | None:
    """The reply of an exchange, streamed or not; None when there is nothing to assemble."""
    return read_exchange(exchange, terminator).reply


# -- one reading per exchange ---------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeReading:
    """An exchange as the checks read it: each event's data parsed, the reply assembled.

    A dozen checks look at the same events; inside :func:`read_once` they share one reading
    instead of parsing every event again each.
    """

    chunks: list[tuple[int, Any]]  # (event index, parsed data) before the terminator; see chunk_data
    reply: AssembledReply | None  # None when there is nothing to assemble (a body that is not JSON)


def read_exchange(exchange: Exchange, terminator: str = DONE) -> ExchangeReading:
    """The exchange's reading: the one kept while :func:`read_once` runs, else a fresh one."""
    readings = exchange.readings
    if readings is not None and terminator in readings:
        return readings[terminator]
    reading = _read(exchange, terminator)
    if readings is not None:
        readings[terminator] = reading
    return reading


@contextmanager
def read_once(*exchanges: Exchange | None) -> Iterator[None]:
    """While the block runs, each exchange is parsed and assembled at most once (per terminator).

    Scoped rather than kept for good, so an exchange changed after it was judged is read afresh.
    """
    held = [exchange for exchange in exchanges if exchange is not None]
    for exchange in held:
        exchange.readings = {}
    try:
        yield
    finally:
        for exchange in held:
            exchange.readings = None


def _read(exchange: Exchange, terminator: str) -> ExchangeReading:
    if exchange.is_stream:
        chunks = chunk_data(exchange.events, terminator)
        return ExchangeReading(chunks, assemble_chunks(chunks))
    if exchange.json is NOT_JSON:
        return ExchangeReading([], None)
    return ExchangeReading([], assemble_message(exchange.json))


def _merge_delta(reply: AssembledReply, target: AssembledChoice, delta: dict[str, Any], event_index: int) -> None:
    if isinstance(delta.get("role"), str):
        target.role = target.role or delta["role"]
    for name in ("content", "refusal"):
        piece = delta.get(name)
        if isinstance(piece, str):
            setattr(target, name, (getattr(target, name) or "") + piece)
    for position, fragment in enumerate(_list(delta.get("tool_calls"))):
        if not isinstance(fragment, dict):
            continue
        index = fragment.get("index")
        if not isinstance(index, int):
            reply.problems.append(f"event {event_index}: a tool-call fragment has no integer 'index'")
            index = position
        call = target.tool_calls.setdefault(index, AssembledToolCall(index))
        fragment_id = fragment.get("id")
        if isinstance(fragment_id, str) and fragment_id:
            if call.id is not None and call.id != fragment_id:
                reply.problems.append(
                    f"event {event_index}: tool call {index} changes id from {call.id!r} to {fragment_id!r}"
                )
            call.id = call.id or fragment_id
        if isinstance(fragment.get("type"), str):
            call.type = fragment["type"]
        function = _dict(fragment.get("function"))
        fragment_name = function.get("name")
        if isinstance(fragment_name, str) and fragment_name:
            if call.name and call.name != fragment_name:
                reply.problems.append(
                    f"event {event_index}: tool call {index} changes name from {call.name!r} to {fragment_name!r}"
                )
            call.name = call.name or fragment_name
        elif fragment_name == "" and call.name is None:
            call.name = ""  # a tool may be named "" where the document allows it; a later real name replaces it
        if isinstance(function.get("arguments"), str):
            call.arguments += function["arguments"]
    audio = delta.get("audio")
    if isinstance(audio, dict):
        target.audio = target.audio or AssembledAudio()
        if isinstance(audio.get("id"), str):
            target.audio.id = audio["id"]
        if isinstance(audio.get("data"), str) and audio["data"]:
            target.audio.data_parts.append(audio["data"])
        if isinstance(audio.get("transcript"), str):
            target.audio.transcript += audio["transcript"]
        if isinstance(audio.get("expires_at"), int):
            target.audio.expires_at = audio["expires_at"]


def _note_id(reply: AssembledReply, body: dict[str, Any]) -> None:
    if isinstance(body.get("id"), str) and body["id"] not in reply.ids:
        reply.ids.append(body["id"])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
