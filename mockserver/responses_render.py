"""One fixture reply rendered as the Responses API sends it: a ``response`` object, or its typed events.

The conversation is the fixture; this is one more rendering of it beside chat's (``stream``,
``prepared``). A turn's text is one ``message`` output item with an ``output_text`` part (and a
``refusal`` part for a refusal), each tool call a ``function_call`` item whose ``call_id`` is the
fixture's call id, so a client that sends the items back, or their outputs, continues the same
fixture conversation.

A stream is the event sequence the official SDKs accumulate: ``response.created`` and
``response.in_progress``, then per item ``output_item.added``, its parts and their deltas and
``.done`` events, ``output_item.done``, and last ``response.completed`` (``response.incomplete``
when the turn stopped at its length). Deltas are the chat stream's token pieces (``tokenize``) and
are the *paced* events, so the chat route's pacing and fault plans apply unchanged; the stream has
no ``[DONE]`` line, so :func:`stream_writes` adapts the fault plan's writes to that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from contract.core import fastjson

from . import faults
from .faults import Disconnect, FaultPlan, Write
from .responses_request import ResponsesRequest
from .stream import DEFAULT_MODEL, DONE
from .tokenize import tokenize
from .turns import AssistantTurn

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
_ID_DIGEST = 24  # bytes: ids of 48 hex digits after the prefix, as the real API's are


@dataclass(frozen=True)
class ResponseIdentity:
    """What names one response and its items: ``resp_...``, its creation time and model."""

    id: str
    created_at: int
    model: str

    @classmethod
    def from_reply_id(cls, reply_id: str, created_at: int, model: str | None) -> ResponseIdentity:
        """Derived from the request's reply id (``RequestDraws.reply_id``), so a seed replays the same ids."""
        return cls("resp_" + _digest(reply_id), created_at, model or DEFAULT_MODEL)

    def item_id(self, prefix: str, index: int) -> str:
        """``msg_...`` / ``fc_...`` of output item ``index``: distinct per response, the same on a replay."""
        return f"{prefix}_{_digest(f'{self.id}:{index}')}"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=_ID_DIGEST).hexdigest()


def responses_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Chat usage (``stream.compute_usage``, the turn's override applied) in the Responses form."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {
            "cache_write_tokens": prompt_details.get("cache_write_tokens", 0),
            "cached_tokens": prompt_details.get("cached_tokens", 0),
        },
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": completion_details.get("reasoning_tokens", 0)},
        "total_tokens": usage["total_tokens"],
    }


def reply_text(turn: AssistantTurn) -> str | None:
    """The turn's words: its content, or an audio turn's transcript (the Responses API sends no audio)."""
    if turn.content is not None:
        return turn.content
    return turn.audio.transcript if turn.audio is not None else None


def item_status(turn: AssistantTurn) -> str:
    return "incomplete" if turn.effective_finish_reason in INCOMPLETE_REASONS else "completed"


def output_items(turn: AssistantTurn, identity: ResponseIdentity) -> list[dict[str, Any]]:
    """The ``output`` array: a message item for the text and refusal (if any, or if there is nothing
    else), then one ``function_call`` item per tool call, in the turn's order."""
    status = item_status(turn)
    text = reply_text(turn)
    items: list[dict[str, Any]] = []
    if text is not None or turn.refusal is not None or not turn.tool_calls:
        content: list[dict[str, Any]] = []
        if text is not None or turn.refusal is None:
            content.append({"type": "output_text", "annotations": [], "logprobs": [], "text": text or ""})
        if turn.refusal is not None:
            content.append({"type": "refusal", "refusal": turn.refusal})
        items.append(_message(identity.item_id("msg", 0), status, content))
    for call in turn.tool_calls:
        function = call.get("function") or {}
        items.append(
            {
                "id": identity.item_id("fc", len(items)),
                "type": "function_call",
                "status": status,
                "arguments": str(function.get("arguments", "")),
                "call_id": str(call.get("id", "")),
                "name": str(function.get("name", "")),
            }
        )
    return items


def _message(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def response_object(
    identity: ResponseIdentity,
    request: ResponsesRequest,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """The ``response`` object, with every field the SDK's ``Response`` type names, in the real API's order."""
    echo = request.echo
    return {
        "id": identity.id,
        "object": "response",
        "created_at": identity.created_at,
        "status": status,
        "background": False,
        "completed_at": identity.created_at if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": identity.model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"),
        "prompt_cache_key": echo.get("prompt_cache_key"),
        "reasoning": echo.get("reasoning", {"effort": None, "summary": None}),
        "safety_identifier": echo.get("safety_identifier"),
        "service_tier": "default",
        "temperature": echo.get("temperature", 1.0),
        "text": echo.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_logprobs": 0,
        "top_p": echo.get("top_p", 1.0),
        "truncation": echo.get("truncation", "disabled"),
        "usage": usage,
        "user": echo.get("user"),
        "metadata": echo.get("metadata", {}),
    }


def encode_event(data: dict[str, Any]) -> bytes:
    """``event: <type>`` and the JSON ``data`` line: the SDKs read the type from the data, browsers'
    EventSource dispatches on the event name, so both carry it."""
    return b"event: " + data["type"].encode("ascii") + b"\ndata: " + fastjson.dumps(data) + b"\n\n"


def error_event(sequence_number: int, message: str, code: str = "server_error", param: str | None = None) -> bytes:
    """A mid-stream ``error`` event (the Responses form of a stream that fails after it began)."""
    return encode_event(
        {"type": "error", "sequence_number": sequence_number, "code": code, "message": message, "param": param}
    )


def malformed_event(response_id: str) -> bytes:
    """An event whose JSON is cut off: what ``malformed_chunk`` sends on a Responses stream."""
    item_id = f"msg_{_digest(f'{response_id}:0')}"
    return (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"'
        + item_id.encode("ascii")
        + b'","output_index":0,"content_index":0,"delt\n\n'
    )


class _EventLog:
    """The events of one stream as they are added, each with the next ``sequence_number``."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.paced: list[bool] = []

    def add(self, kind: str, fields: dict[str, Any], paced: bool = False) -> None:
        self.events.append(encode_event({"type": kind, "sequence_number": len(self.events), **fields}))
        self.paced.append(paced)


class ResponsesReply:
    """One request's reply in Responses form: the ``response`` body, or the stream's events and pacing.

    ``usage`` is the chat usage (``stream.compute_usage`` over :meth:`ResponsesRequest.chat_body`'s
    messages). Nothing is rendered until asked for, as with chat's ``ReplyBytes``.
    """

    def __init__(
        self, turn: AssistantTurn, identity: ResponseIdentity, usage: Mapping[str, Any], request: ResponsesRequest
    ) -> None:
        self.turn, self.identity, self.request = turn, identity, request
        self.usage = responses_usage(usage)
        self.incomplete_reason = INCOMPLETE_REASONS.get(turn.effective_finish_reason)

    @property
    def status(self) -> str:
        return "incomplete" if self.incomplete_reason else "completed"

    @cached_property
    def response(self) -> dict[str, Any]:
        """The finished ``response`` object: the JSON body, and what ``response.completed`` carries."""
        return response_object(
            self.identity,
            self.request,
            status=self.status,
            output=output_items(self.turn, self.identity),
            usage=self.usage,
            incomplete_reason=self.incomplete_reason,
        )

    def body(self) -> bytes:
        return fastjson.dumps(self.response)

    @cached_property
    def _stream(self) -> _EventLog:
        log = _EventLog()
        started = response_object(self.identity, self.request, status="in_progress", output=[], usage=None)
        log.add("response.created", {"response": started})
        log.add("response.in_progress", {"response": started})
        for index, item in enumerate(self.response["output"]):
            if item["type"] == "message":
                _message_events(log, index, item)
            else:
                _call_events(log, index, item)
        final = "response.incomplete" if self.incomplete_reason else "response.completed"
        log.add(final, {"response": self.response})
        return log

    @property
    def events(self) -> list[bytes]:
        """Every event of the stream, encoded, in order; there is no ``[DONE]`` after the last."""
        return self._stream.events

    @property
    def paced(self) -> tuple[bool, ...]:
        """Per event, whether it carries a token and waits its turn (``stream.pacing_delays`` reads this)."""
        return tuple(self._stream.paced)


def _message_events(log: _EventLog, index: int, item: dict[str, Any]) -> None:
    ids = {"item_id": item["id"], "output_index": index}
    log.add(
        "response.output_item.added", {"output_index": index, "item": {**item, "status": "in_progress", "content": []}}
    )
    for content_index, part in enumerate(item["content"]):
        where = {**ids, "content_index": content_index}
        if part["type"] == "output_text":
            log.add("response.content_part.added", {**where, "part": {**part, "text": ""}})
            for piece in tokenize(part["text"]):
                log.add("response.output_text.delta", {**where, "delta": piece, "logprobs": []}, paced=True)
            log.add("response.output_text.done", {**where, "text": part["text"], "logprobs": []})
        else:
            log.add("response.content_part.added", {**where, "part": {**part, "refusal": ""}})
            for piece in tokenize(part["refusal"]):
                log.add("response.refusal.delta", {**where, "delta": piece}, paced=True)
            log.add("response.refusal.done", {**where, "refusal": part["refusal"]})
        log.add("response.content_part.done", {**where, "part": part})
    log.add("response.output_item.done", {"output_index": index, "item": item})


def _call_events(log: _EventLog, index: int, item: dict[str, Any]) -> None:
    """A call's header is paced as chat's is (it carries the name), then each piece of its arguments."""
    ids = {"item_id": item["id"], "output_index": index}
    started = {**item, "status": "in_progress", "arguments": ""}
    log.add("response.output_item.added", {"output_index": index, "item": started}, paced=True)
    for piece in tokenize(item["arguments"]):
        log.add("response.function_call_arguments.delta", {**ids, "delta": piece}, paced=True)
    log.add("response.function_call_arguments.done", {**ids, "name": item["name"], "arguments": item["arguments"]})
    log.add("response.output_item.done", {"output_index": index, "item": item})


def stream_writes(
    events: Sequence[bytes], delays: Sequence[float], plan: FaultPlan | None, response_id: str
) -> list[Write | Disconnect]:
    """The network writes of a Responses stream, with ``plan`` applied as ``faults.stream_writes`` does.

    A Responses stream ends with its last event, not ``[DONE]``: so ``no_done`` leaves out that last
    event (``response.completed``), the stream a client must notice never finished; ``malformed_chunk``
    sends a cut-off Responses event; every other fault (disconnect, stall, keepalive, split_utf8) is
    the chat one, unchanged.
    """
    if plan is None:
        return [*map(Write, delays, events)]
    if plan.type == "no_done":
        return [*map(Write, delays[:-1], events[:-1])]
    writes: list[Write | Disconnect] = []
    for write in faults.stream_writes(events, delays, plan, response_id):
        if isinstance(write, Write) and write.data == DONE:
            if write.delay > 0:  # a stall planned after the last event still holds the connection open
                writes.append(Write(write.delay, b""))
        elif isinstance(write, Write) and write.data.startswith(b"data: "):
            # Every Responses event begins ``event:``; a write that begins ``data:`` is the plan's
            # chat-shaped malformed chunk.
            writes.append(Write(write.delay, malformed_event(response_id)))
        else:
            writes.append(write)
    return writes
