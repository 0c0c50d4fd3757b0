"""What the mock plays back: one assistant turn, its audio, and its pacing.

Fixture files, the fallback and the Python API all produce these; the stream
builder consumes them. Keeping them in one small module lets each side change
without knowing the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AudioReply:
    """Audio for a reply: WAV bytes (from a file next to the fixture, or synthesised) and its transcript.

    ``format`` is what goes on the wire (the request's ``audio.format``): the WAV itself, or ``pcm16``.
    """

    wav: bytes
    transcript: str
    source: Path | None = None  # the WAV file, when it came from one
    format: str = "wav"

    @property
    def payload(self) -> bytes:
        """The bytes sent, base64-encoded, as ``audio.data``."""
        from .audio import encode_audio

        return encode_audio(self.wav, self.format)


# A stream never waits more than 10 s between two tokens: a rate of 1e-300 would hold a connection forever.
MIN_TOKENS_PER_SECOND = 0.1
MAX_TOKENS_PER_SECOND = 1_000_000.0
MAX_TTFT_MS = 600_000.0


class PacingError(ValueError):
    """A pacing value out of range; ``field`` names it, so each caller can say where it was given."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Pacing:
    """Timing of a stream; ``None`` fields defer to the next layer (command line, then defaults).

    It checks itself when made, so every way of giving one (the command line, a fixture's ``stream``,
    ``X-Mock-Pacing``, the Python API) keeps the same bounds and words a bad value the same way.
    """

    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    jitter: float | None = None  # relative spread of each delay, drawn from the seeded RNG

    def __post_init__(self) -> None:
        if self.ttft_ms is not None and not 0 <= self.ttft_ms <= MAX_TTFT_MS:
            raise PacingError("ttft_ms", f"must be between 0 and {MAX_TTFT_MS:g}, got {self.ttft_ms:g}")
        rate = self.tokens_per_second
        if rate is not None and not (rate == 0 or MIN_TOKENS_PER_SECOND <= rate <= MAX_TOKENS_PER_SECOND):
            raise PacingError(
                "tokens_per_second",
                f"must be 0 (no wait) or between {MIN_TOKENS_PER_SECOND:g} and {MAX_TOKENS_PER_SECOND:g}, got {rate:g}",
            )
        if self.jitter is not None and not 0 <= self.jitter < 1:
            raise PacingError("jitter", f"must be at least 0 and below 1, got {self.jitter:g}")


@dataclass(frozen=True)
class AssistantTurn:
    """One reply the server plays back."""

    content: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()  # OpenAI shape: {id, type: function, function: {name, arguments}}
    refusal: str | None = None
    audio: AudioReply | None = None
    usage: dict[str, Any] | None = None  # overrides the computed usage, field by field
    fault: dict[str, Any] | None = None  # raw fault spec, parsed by mockserver.faults.parse_fault
    finish_reason: str | None = None  # default: "tool_calls" when there are tool calls, else "stop"
    stream_default: bool | None = None  # how a request without ``stream`` is answered; None: the profile's way
    source: str = ""  # "file.yaml:12" of the turn, for error messages
    extra: dict[str, Any] = field(default_factory=dict)
    # What rendering this turn computes once and reuses on every request it answers (its pieces' bytes,
    # its token count): a turn never changes, so neither do they. Filled by mockserver.prepared.
    rendered: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def effective_finish_reason(self) -> str:
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"
