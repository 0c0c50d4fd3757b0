"""Turn one assistant reply into what the wire carries: a response body or a chunk stream.

The shapes follow what OpenAI-compatible servers send, because client code
is written against those bytes: a first chunk that carries the role, one
token per chunk, tool calls as a header delta with ``index`` / ``id`` /
``name`` followed by argument fragments, ``finish_reason`` ``null`` until the
last choice chunk, a usage chunk with no choices, then ``data: [DONE]``.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contract.core.sse import encode_event

from .randomness import ID_CHARACTERS
from .tokenize import count_tokens, tokenize
from .turns import AssistantTurn, Pacing, PacingError

DEFAULT_MODEL = "mock-model"
DONE = b"data: [DONE]\n\n"
AUDIO_TTL_S = 3600
_PER_MESSAGE_TOKENS = 4  # role and framing, as chat tokenizers charge per message
_REPLY_PRIMING_TOKENS = 3
_IMAGE_TOKENS = 85  # a low-detail image
_AUDIO_PART_TOKENS = 50


@dataclass(frozen=True)
class ReplyIdentity:
    """What every chunk of one reply repeats: ``id``, ``created`` and ``model``."""

    id: str
    created: int
    model: str

    @classmethod
    def new(cls, rng: random.Random, model: str | None, created: int) -> ReplyIdentity:
        suffix = rng.randbytes(29).translate(ID_CHARACTERS).decode("ascii")  # one draw for all 29 characters
        return cls(id=f"chatcmpl-{suffix}", created=created, model=model or DEFAULT_MODEL)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a stream; ``paced`` chunks carry a token and wait their turn."""

    data: dict[str, Any]
    paced: bool

    def encode(self) -> bytes:
        return encode_event(json.dumps(self.data, ensure_ascii=False, separators=(",", ":")))


# -- usage ----------------------------------------------------------------------------------------


def prompt_tokens(messages: Iterable[Any]) -> int:
    """Tokens a request's messages cost, with the same tokenizer as the reply."""
    total = _REPLY_PRIMING_TOKENS
    for message in messages:
        total += _PER_MESSAGE_TOKENS
        if not isinstance(message, dict):
            continue
        total += _content_tokens(message.get("content"))
        if isinstance(message.get("name"), str):
            total += count_tokens(message["name"])
        for call in message.get("tool_calls") or ():
            function = call.get("function", {}) if isinstance(call, dict) else {}
            total += count_tokens(str(function.get("name", ""))) + count_tokens(str(function.get("arguments", "")))
    return total


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return count_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += count_tokens(part)
            elif isinstance(part, dict) and part.get("type") == "image_url":
                total += _IMAGE_TOKENS
            elif isinstance(part, dict) and part.get("type") == "input_audio":
                total += _AUDIO_PART_TOKENS
            elif isinstance(part, dict):
                total += count_tokens(str(part.get("text", "")))
        return total
    if isinstance(content, dict):  # a fixture matcher such as {contains: ...}
        return sum(count_tokens(str(value)) for value in content.values())
    return 0


def completion_tokens(turn: AssistantTurn) -> int:
    """Tokens the reply costs; counted once per turn, since every request it answers costs the same."""
    cached = turn.rendered.get("completion_tokens")
    if cached is None:
        cached = turn.rendered["completion_tokens"] = _count_completion_tokens(turn)
    return int(cached)


def _count_completion_tokens(turn: AssistantTurn) -> int:
    total = count_tokens(turn.content or "") + count_tokens(turn.refusal or "")
    for call in turn.tool_calls:
        function = call.get("function", {})
        total += count_tokens(str(function.get("name", ""))) + count_tokens(str(function.get("arguments", "")))
    if turn.audio is not None:
        total += count_tokens(turn.audio.transcript)
    return total


def compute_usage(messages: Iterable[Any], turn: AssistantTurn) -> dict[str, Any]:
    """Usage counts; a turn's ``usage`` override wins field by field, and the total follows the parts."""
    usage: dict[str, Any] = {"prompt_tokens": prompt_tokens(messages), "completion_tokens": completion_tokens(turn)}
    override = dict(turn.usage or {})
    usage.update({key: value for key, value in override.items() if key != "total_tokens"})
    usage["total_tokens"] = override.get("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    return usage


def usage_override_problem(override: dict[str, Any] | None) -> str | None:
    """Why a usage override could never add up, or ``None``: a given total needs both parts given."""
    if not override or "total_tokens" not in override:
        return None
    parts = override.get("prompt_tokens"), override.get("completion_tokens")
    if any(not isinstance(part, int) for part in parts):
        return "usage.total_tokens is given, so prompt_tokens and completion_tokens must be given too"
    if override["total_tokens"] != sum(parts):  # type: ignore[arg-type]
        return f"usage.total_tokens is {override['total_tokens']}, but prompt_tokens + completion_tokens = {sum(parts)}"  # type: ignore[arg-type]
    return None


# -- the non-streamed response --------------------------------------------------------------------


def audio_id(identity: ReplyIdentity) -> str:
    return "audio_" + identity.id.removeprefix("chatcmpl-")[:24]


def render_completion(turn: AssistantTurn, identity: ReplyIdentity, usage: dict[str, Any]) -> dict[str, Any]:
    """The whole reply as one ``chat.completion`` object (``stream: false``)."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.content, "refusal": turn.refusal}
    if turn.tool_calls:
        message["tool_calls"] = [_plain_call(call) for call in turn.tool_calls]
    if turn.audio is not None:
        message["audio"] = {
            "id": audio_id(identity),
            "expires_at": identity.created + AUDIO_TTL_S,
            "data": base64.b64encode(turn.audio.payload).decode("ascii"),
            "transcript": turn.audio.transcript,
        }
    return {
        "id": identity.id,
        "object": "chat.completion",
        "created": identity.created,
        "model": identity.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": turn.effective_finish_reason}],
        "usage": usage,
    }


def _plain_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function", {})
    return {
        "id": call.get("id", ""),
        "type": call.get("type", "function"),
        "function": {"name": function.get("name", ""), "arguments": function.get("arguments", "")},
    }


# -- the stream -----------------------------------------------------------------------------------


def render_chunks(turn: AssistantTurn, identity: ReplyIdentity, usage: dict[str, Any]) -> list[Chunk]:
    """Every chunk of the streamed reply, in order, without the final ``[DONE]``.

    The usage chunk is always sent: the contract's request has no ``stream_options``,
    and a client that did not ask for it ignores a chunk with no choices.
    """

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, paced: bool = True) -> Chunk:
        return Chunk(
            _envelope(identity, [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]), paced
        )

    first_content: str | None = "" if (turn.content is not None or turn.audio is not None) else None
    chunks = [chunk({"role": "assistant", "content": first_content, "refusal": None}, paced=False)]
    for piece in tokenize(turn.content or ""):
        chunks.append(chunk({"content": piece}))
    for piece in tokenize(turn.refusal or ""):
        chunks.append(chunk({"refusal": piece}))
    for index, call in enumerate(turn.tool_calls):
        plain = _plain_call(call)
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": plain["id"],
                            "type": plain["type"],
                            "function": {"name": plain["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in tokenize(plain["function"]["arguments"]):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    if turn.audio is not None:
        chunks.extend(chunk({"audio": delta}) for delta in _audio_deltas(turn, identity))
    chunks.append(chunk({}, turn.effective_finish_reason, paced=False))
    usage_chunk = _envelope(identity, [])
    usage_chunk["usage"] = usage
    chunks.append(Chunk(usage_chunk, paced=False))
    return chunks


def render_choices(
    turns: Sequence[AssistantTurn], identity: ReplyIdentity, usage: dict[str, Any]
) -> tuple[list[Chunk], dict[str, Any]]:
    """A reply of several choices (``n``): each turn's chunks with its own ``index``, one after the other,
    then one usage chunk; and the same choices as one ``chat.completion`` object.

    Clients gather deltas by ``index``, so a choice's chunks need not interleave with the others'.
    """
    chunks: list[Chunk] = []
    choices: list[dict[str, Any]] = []
    for index, turn in enumerate(turns):
        for chunk in render_chunks(turn, identity, usage)[:-1]:
            chunk.data["choices"][0]["index"] = index
            chunks.append(chunk)
        choice = render_completion(turn, identity, usage)["choices"][0]
        choices.append({**choice, "index": index})
    usage_chunk = _envelope(identity, [])
    usage_chunk["usage"] = usage
    chunks.append(Chunk(usage_chunk, paced=False))
    completion = {**render_completion(turns[0], identity, usage), "choices": choices}
    return chunks, completion


def choices_usage(messages: Iterable[Any], turns: Sequence[AssistantTurn]) -> dict[str, Any]:
    """Usage of a reply of several choices: the prompt once, the completion tokens of every choice."""
    usage = compute_usage(messages, turns[0])
    for turn in turns[1:]:
        usage["completion_tokens"] += compute_usage((), turn)["completion_tokens"]
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def _envelope(identity: ReplyIdentity, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": identity.id,
        "object": "chat.completion.chunk",
        "created": identity.created,
        "model": identity.model,
        "choices": choices,
        "usage": None,
    }


def _audio_deltas(turn: AssistantTurn, identity: ReplyIdentity) -> list[dict[str, Any]]:
    """The audio id, then transcript pieces interleaved with base64 data pieces, then ``expires_at``.

    Each data piece is a whole number of base64 quanta, so a client may decode
    the pieces one by one or join them first; both give the same WAV bytes.
    """
    assert turn.audio is not None
    transcript = tokenize(turn.audio.transcript)
    encoded = base64.b64encode(turn.audio.payload).decode("ascii")
    piece_count = max(1, len(transcript))
    size = max(4096, -(-len(encoded) // piece_count))
    size += (-size) % 4
    data = [encoded[i : i + size] for i in range(0, len(encoded), size)]
    deltas: list[dict[str, Any]] = [{"id": audio_id(identity), "transcript": ""}]
    for i in range(max(len(transcript), len(data))):
        if i < len(transcript):
            deltas.append({"transcript": transcript[i]})
        if i < len(data):
            deltas.append({"data": data[i]})
    deltas.append({"expires_at": identity.created + AUDIO_TTL_S})
    return deltas


# -- pacing ---------------------------------------------------------------------------------------

DEFAULT_PACING = Pacing(ttft_ms=250.0, tokens_per_second=40.0, jitter=0.2)
NO_DELAY = Pacing(ttft_ms=0.0, tokens_per_second=0.0, jitter=0.0)  # tokens_per_second 0: no wait
_PACING_KEYS = ("ttft_ms", "tokens_per_second", "jitter")


def layer_pacing(*layers: Pacing | None) -> Pacing:
    """The first layer that sets a field wins (header, fixture, command line, defaults)."""
    values: dict[str, float] = {}
    for layer in (*layers, DEFAULT_PACING):
        if layer is None:
            continue
        for key in _PACING_KEYS:
            value = getattr(layer, key)
            if key not in values and value is not None:
                values[key] = float(value)
    return Pacing(**values)


def parse_pacing_header(text: str) -> Pacing:
    """``X-Mock-Pacing: ttft_ms=100, tokens_per_second=50, jitter=0`` or ``none``; ValueError when bad."""
    text = text.strip()
    if text.lower() in ("none", "off", "0"):
        return NO_DELAY
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in _PACING_KEYS:
            raise ValueError(
                f"X-Mock-Pacing: {item!r} is not one of {', '.join(k + '=N' for k in _PACING_KEYS)} or 'none'"
            )
        try:
            values[key] = float(raw)
        except ValueError:
            raise ValueError(f"X-Mock-Pacing: {key} must be a number, got {raw.strip()!r}") from None
    try:
        return Pacing(**values)
    except PacingError as exc:
        raise ValueError(f"X-Mock-Pacing: {exc}") from None


def pacing_delays(paced: Sequence[bool], pacing: Pacing, rng: random.Random | None) -> list[float]:
    """Seconds to wait before each chunk: TTFT before the first paced chunk, 1/rate before the others.

    Each wait is scaled by ``1 ± jitter·u`` with ``u`` drawn from the request's seeded RNG,
    so the same seed replays the same timing; without jitter nothing is drawn and ``rng`` may be None.
    """
    ttft = (pacing.ttft_ms or 0.0) / 1000.0
    rate = pacing.tokens_per_second or 0.0
    step = 1.0 / rate if rate > 0 else 0.0
    jitter = pacing.jitter or 0.0
    delays: list[float] = []
    seen_token = False
    for is_paced in paced:
        if not is_paced:
            delays.append(0.0)
            continue
        base = step if seen_token else ttft
        seen_token = True
        if jitter and base:
            if rng is None:
                raise ValueError("a jittered pacing draws from the request's RNG; none was given")
            base = max(0.0, base * (1 + jitter * rng.uniform(-1.0, 1.0)))
        delays.append(base)
    return delays


def planned_timings(paced: Sequence[bool], delays: Sequence[float], writes: Sequence[Any]) -> dict[str, float]:
    """When a stream's first token and its end are due, in ms from its start, as its pacing and fault plan them.

    The journal keeps them (and the dashboard shows them) because they are known when the reply is decided;
    a slow client may receive later than planned.
    """
    elapsed, first_token = 0.0, None
    for is_paced, delay in zip(paced, delays):
        elapsed += delay
        if is_paced and first_token is None:
            first_token = elapsed
    total = sum(getattr(write, "delay", 0.0) for write in writes)
    return {"ttft_ms": round((first_token or 0.0) * 1000, 1), "total_ms": round(total * 1000, 1)}
