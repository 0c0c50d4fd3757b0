"""What one proxied exchange becomes in a fixture: the assistant turn, its fault and its measured pacing.

The recorder sees bytes and their arrival times; the fixture format speaks of
turns, faults and ``stream:`` pacing. This module is the translation, kept
free of sockets and files so each rule (which upstream error becomes which
fault, what a dropped stream replays as, how pacing is measured) can be tested
with plain values.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import json
import math
import statistics
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contract.core.semantics import AssembledChoice, AssembledReply, assemble_message, assemble_stream
from contract.core.sse import SSEEvent

from ..audio import synthesize_wav
from ..fixtures import FINISH_REASONS, MAX_FIXTURE_BYTES, USAGE_DETAIL_KEYS
from ..request_rules import shape_for_modalities
from ..stream import ReplyIdentity, render_chunks
from ..tokenize import count_tokens, tokenize
from ..turns import MAX_TOKENS_PER_SECOND, MIN_TOKENS_PER_SECOND, AssistantTurn, AudioReply

MAX_JITTER = 0.99  # the loader takes up to 1; the command line and X-Mock-Pacing take below 1
MAX_TTFT_MS = 600_000.0  # the server's own limits on pacing
PCM16_RATE = 24_000  # streamed ``pcm16`` audio: 24 kHz, 16-bit, mono little-endian
SECONDS_PER_SPOKEN_TOKEN = 0.3  # for audio that cannot be kept as a WAV: the replay synthesises this long
_COMPRESSED_AUDIO = ("mp3", "opus", "flac", "aac")
# What the proxy keeps of one reply to record it. A fixture holds at most MAX_FIXTURE_BYTES, and a
# reply's events carry their text with JSON around it, so four times that; each kept event also costs
# its objects, charged as EVENT_COST, so a million tiny events stop being kept as surely as a huge body.
MAX_RECORDED_BYTES = 4 * MAX_FIXTURE_BYTES
EVENT_COST = 256


class NotRecordable(Exception):
    """This exchange cannot become a fixture turn; the message says why, in one line."""


@dataclass(frozen=True)
class MeasuredPacing:
    """Pacing measured from one streamed exchange; ``None`` where the exchange did not show it."""

    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    jitter: float | None = None

    def as_stream(self) -> dict[str, float]:
        return {
            key: value
            for key, value in (
                ("ttft_ms", self.ttft_ms),
                ("tokens_per_second", self.tokens_per_second),
                ("jitter", self.jitter),
            )
            if value is not None
        }


@dataclass
class Capture:
    """Everything the proxy saw of one exchange, with event times in seconds since the request went out."""

    request: dict[str, Any]
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # the response's, lower-cased names
    stream: bool = False
    arrivals: list[tuple[float, SSEEvent]] = field(default_factory=list)
    body: bytes = b""  # a non-stream body
    done: bool = False  # the stream's ``[DONE]`` arrived
    dropped: bool = False  # the connection broke before the body ended
    kept: int = 0  # bytes charged against MAX_RECORDED_BYTES
    too_large: bool = False  # over the limit: what was kept is dropped, the reply is relayed but not recorded

    def keep(self, at: float, event: SSEEvent) -> None:
        """Keep one event for the recording, until the reply passes :data:`MAX_RECORDED_BYTES`."""
        if self.too_large:
            return
        self.kept += len(event.data) + EVENT_COST
        if self.kept > MAX_RECORDED_BYTES:
            self.give_up()
        else:
            self.arrivals.append((at, event))

    def give_up(self) -> None:
        """Drop what was kept: the reply is over the limit and will not be recorded."""
        self.too_large = True
        self.arrivals = []
        self.body = b""


@dataclass
class RecordedTurn:
    """An assistant message in the fixture format, the WAV to save beside it, and the pacing measured."""

    message: dict[str, Any]
    wav: bytes | None = None  # saved next to the file; the writer fills in ``audio.file``
    pacing: MeasuredPacing | None = None


def recorded_turn(capture: Capture) -> RecordedTurn:
    """The turn one exchange adds to its conversation; NotRecordable says why there is none.

    A request that left ``stream`` out keeps how the upstream answered it (``stream_default``), so the
    replay answers the same client the same way whatever the profile's default.
    """
    turn = _recorded_turn(capture)
    if capture.status == 200 and not isinstance(capture.request.get("stream"), bool):
        turn.message["stream_default"] = capture.stream
    return turn


def _recorded_turn(capture: Capture) -> RecordedTurn:
    if capture.too_large:
        raise NotRecordable(
            f"the upstream's reply is larger than the recording limit of {MAX_RECORDED_BYTES // 2**20} MB "
            "(it was relayed in full)"
        )
    if capture.status == 429 or capture.status >= 500:
        return RecordedTurn({"role": "assistant", "fault": error_fault(capture.status, capture.headers)})
    if capture.status != 200:
        raise NotRecordable(f"the upstream refused the request with HTTP {capture.status}{_error_text(capture.body)}")
    if capture.stream:
        return _stream_turn(capture)
    if capture.dropped:
        raise NotRecordable("the upstream dropped the connection in the middle of a JSON reply")
    try:
        body = json.loads(capture.body)
    except ValueError:
        raise NotRecordable("the upstream's 200 reply is neither an event stream nor JSON") from None
    reply = assemble_message(body)
    message, wav, _ = _turn_message(capture.request, reply.choice(0), reply, complete=True)
    return RecordedTurn(message, wav)


# -- faults ---------------------------------------------------------------------------------------


def error_fault(status: int, headers: dict[str, str], now: float | None = None) -> dict[str, Any]:
    """An upstream error status as the mock's ``http_error`` fault, with the ``Retry-After`` it sent."""
    fault: dict[str, Any] = {"type": "http_error", "status": documented_status(status)}
    if status == 429:
        wait = retry_after_seconds(headers, now)
        if wait is not None:
            fault["retry_after"] = wait
    return fault


def documented_status(status: int) -> int:
    """The contract documents 429, 500 and 503: gateway errors read as 503, other 5xx as 500."""
    if status in (429, 500, 503):
        return status
    return 503 if status in (502, 504) else 500


def retry_after_seconds(headers: dict[str, str], now: float | None = None) -> int | None:
    """Whole seconds from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``, rounded up."""
    text = headers.get("retry-after", "").strip()
    if text:
        try:
            return max(0, math.ceil(float(text)))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError):
            return None
        return max(0, math.ceil(when - (time.time() if now is None else now)))
    millis = headers.get("retry-after-ms", "").strip()
    try:
        return max(0, math.ceil(float(millis) / 1000.0)) if millis else None
    except ValueError:
        return None


# -- streams --------------------------------------------------------------------------------------


def _stream_turn(capture: Capture) -> RecordedTurn:
    events = [event for _, event in capture.arrivals]
    reply = assemble_stream(events)
    choice = reply.choice(0)
    complete = capture.done or (choice.finish_reason is not None and not capture.dropped)
    message, wav, turn = _turn_message(capture.request, choice, reply, complete=complete)
    tokens = paced_chunks(turn)
    if not capture.done:
        if capture.dropped or choice.finish_reason is None:
            # Replay everything that arrived, then drop: the role chunk, the tokens, and the
            # finish and usage chunks if they came before the connection broke.
            after = 1 + tokens + (choice.finish_reason is not None) + (reply.usage is not None)
            message["fault"] = {"type": "disconnect", "after_chunks": after}
            message.pop("usage", None)
        else:
            message["fault"] = {"type": "no_done"}
    times = [at for at, event in capture.arrivals if _carries_output(event)]
    return RecordedTurn(message, wav, measure_pacing(times, tokens))


def paced_chunks(turn: AssistantTurn) -> int:
    """How many chunks the replay of ``turn`` paces: its own token chunks, whatever the upstream's were.

    Counted from the tokenizer without rendering each chunk, which for a long reply costs seconds;
    audio chunks depend on the rendering, so a turn with audio is rendered.
    """
    if turn.audio is not None:
        chunks = render_chunks(turn, ReplyIdentity("chatcmpl-recorded", 0, "recorded"), {})
        return sum(1 for chunk in chunks if chunk.paced)
    calls = sum(1 + len(tokenize(str(call.get("function", {}).get("arguments", "")))) for call in turn.tool_calls)
    return len(tokenize(turn.content or "")) + len(tokenize(turn.refusal or "")) + calls


def _carries_output(event: SSEEvent) -> bool:
    """Whether an event carries content, a refusal, a tool call or audio in its first choice."""
    try:
        chunk = json.loads(event.data)
    except ValueError:
        return False
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0 and isinstance(choice.get("delta"), dict):
            delta = choice["delta"]
            return bool(delta.get("content") or delta.get("refusal") or delta.get("tool_calls") or delta.get("audio"))
    return False


def measure_pacing(output_times: Sequence[float], replay_tokens: int) -> MeasuredPacing | None:
    """Pacing that makes a replay keep the original's timing.

    ``ttft_ms``: from the request going out to the first event with output (content, refusal,
    tool call or audio). ``tokens_per_second``: the replay's own token chunks after its first,
    over the time from the first to the last event with output, so the replay lasts as long as
    the original whatever the upstream's chunk size. ``jitter``: the mock scales each wait by
    ``1 ± jitter·u`` with ``u`` uniform, whose coefficient of variation is ``jitter/√3``; so it is
    √3 times the coefficient of variation of the gaps between those events, at most 0.99.
    """
    if not output_times:
        return None
    ttft = min(MAX_TTFT_MS, round(output_times[0] * 1000.0))
    rate = jitter = None
    span = output_times[-1] - output_times[0]
    if len(output_times) >= 2 and replay_tokens >= 2 and span > 0.001:
        rate = min(MAX_TOKENS_PER_SECOND, max(MIN_TOKENS_PER_SECOND, round((replay_tokens - 1) / span, 1)))
    gaps = [later - earlier for earlier, later in zip(output_times, output_times[1:])]
    if len(gaps) >= 2 and statistics.fmean(gaps) > 0:
        variation = statistics.pstdev(gaps) / statistics.fmean(gaps)
        jitter = round(min(MAX_JITTER, math.sqrt(3) * variation), 2)
    return MeasuredPacing(float(ttft), rate, jitter)


def merge_pacing(previous: dict[str, Any] | None, count: int, new: MeasuredPacing | None) -> dict[str, float]:
    """The running mean of ``count`` earlier measurements (``previous``) and a new one."""
    merged = dict(previous or {})
    if new is None:
        return merged
    for key, value in new.as_stream().items():
        old = merged.get(key)
        if isinstance(old, (int, float)) and count > 0:
            value = (old * count + value) / (count + 1)
        merged[key] = round(value) if key == "ttft_ms" else round(value, 2 if key == "jitter" else 1)
    return merged


# -- the assistant message ------------------------------------------------------------------------


def _turn_message(
    request: dict[str, Any], choice: AssembledChoice, reply: AssembledReply, complete: bool
) -> tuple[dict[str, Any], bytes | None, AssistantTurn]:
    """The message for the file, its WAV, and the same turn as the mock plays it (to count its chunks)."""
    message: dict[str, Any] = {"role": "assistant"}
    content = choice.content if choice.content and choice.content.strip() else None
    if content is not None:
        message["content"] = content
    if choice.refusal:
        message["refusal"] = choice.refusal
    calls = _tool_calls(choice, complete)
    if calls:
        message["tool_calls"] = calls
    wav: bytes | None = None
    audio_reply: AudioReply | None = None
    if choice.audio is not None and (choice.audio.data_parts or choice.audio.transcript):
        transcript = choice.audio.transcript.strip() or "(no transcript)"
        wav = _wav(choice.audio.data_parts, request)
        if wav is None:
            duration = round(min(30.0, max(0.5, count_tokens(transcript) * SECONDS_PER_SPOKEN_TOKEN)), 1)
            message["audio"] = {"duration_s": duration, "transcript": transcript}
            audio_reply = AudioReply(synthesize_wav(duration), transcript)
        else:
            message["audio"] = {"transcript": transcript}
            audio_reply = AudioReply(wav, transcript)
    if len(message) == 1:
        cut = "" if complete else " before the connection broke"
        raise NotRecordable(f"the upstream's reply says nothing{cut}: no content, tool call, refusal or audio")
    default = "tool_calls" if calls else "stop"
    if complete and choice.finish_reason in FINISH_REASONS and choice.finish_reason != default:
        if choice.finish_reason != "tool_calls" or calls:
            message["finish_reason"] = choice.finish_reason
    usage = clean_usage(reply.usage) if complete else None
    if usage:
        message["usage"] = usage
    turn = AssistantTurn(
        content=content,
        refusal=message.get("refusal"),
        audio=audio_reply,
        tool_calls=tuple(_plain(call) for call in calls),
    )
    return message, wav, shape_for_modalities(turn, request, 0)


def _tool_calls(choice: AssembledChoice, complete: bool) -> list[dict[str, Any]]:
    """The calls in index order; a stream cut short keeps only the calls whose arguments are whole."""
    calls: list[dict[str, Any]] = []
    for index in sorted(choice.tool_calls):
        call = choice.tool_calls[index]
        if not call.name:
            continue
        arguments = call.arguments if call.arguments.strip() else "{}"
        if not complete:
            try:
                if not isinstance(json.loads(arguments), dict):
                    continue
            except ValueError:
                continue
        entry: dict[str, Any] = {"id": call.id} if call.id else {}
        entry.update({"type": "function", "function": {"name": call.name, "arguments": arguments}})
        calls.append(entry)
    return calls


def _plain(call: dict[str, Any]) -> dict[str, Any]:
    return {"id": call.get("id", "call_recorded"), "type": "function", "function": dict(call["function"])}


def clean_usage(usage: Any) -> dict[str, Any] | None:
    """The upstream's usage, limited to the counts the fixture format takes, with a total that adds up."""
    if not isinstance(usage, dict):
        return None
    out: dict[str, Any] = {}
    for key in ("prompt_tokens", "completion_tokens"):
        if _is_count(usage.get(key)):
            out[key] = usage[key]
    if len(out) == 2:
        out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    for key, allowed in USAGE_DETAIL_KEYS.items():
        details = usage.get(key)
        if isinstance(details, dict):
            kept = {name: details[name] for name in allowed if _is_count(details.get(name))}
            if kept:
                out[key] = kept
    return out or None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# -- audio ----------------------------------------------------------------------------------------


def _wav(parts: list[str], request: dict[str, Any]) -> bytes | None:
    """WAV bytes of the reply's audio: kept as sent when it is a WAV, wrapped when it is raw ``pcm16``."""
    data = _decode(parts)
    if not data:
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return data
    audio = request.get("audio")
    if not isinstance(audio, dict):
        audio = {}
    if audio.get("format") in _COMPRESSED_AUDIO or len(data) < 2:
        return None
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(PCM16_RATE)
        writer.writeframes(data[: len(data) - len(data) % 2])
    return out.getvalue()


def _decode(parts: list[str]) -> bytes:
    """Base64 pieces joined; pieces that each carry their own padding are decoded one by one."""
    try:
        return base64.b64decode("".join(parts), validate=True)
    except (binascii.Error, ValueError):
        try:
            return b"".join(base64.b64decode(part) for part in parts)
        except (binascii.Error, ValueError):
            return b""


def _error_text(body: bytes) -> str:
    """``: message`` of an upstream Error body, for the log line."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return ""
    return f": {' '.join(str(message).split())[:200]}" if message else ""
