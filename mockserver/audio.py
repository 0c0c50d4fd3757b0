"""WAV bytes for audio replies: read a file next to a fixture, or make one up.

A fixture that only says ``duration_s: 1.5`` still needs real, decodable audio
on the wire, so clients can exercise their decoders; a seeded tone pattern
(not silence, which some players and checks treat as "no audio") gives that
without shipping binary files.
"""

from __future__ import annotations

import array
import io
import math
import os
import random
import stat
import sys
import wave
from pathlib import Path

from contract.core.textfile import UnreadableFile, read_bytes

MAX_SYNTHESISED_SECONDS = 600.0
MAX_WAV_FILE_BYTES = 64 * 1024 * 1024  # ten minutes of 48 kHz stereo is 110 MB; a fixture's chime is far less
_WAV_HEAD_BYTES = 12  # "RIFF", the size, "WAVE"
_NOTE_SECONDS = 0.12
_PENTATONIC_HZ = (261.63, 293.66, 329.63, 392.00, 440.00, 523.25, 587.33, 659.25)


def synthesize_wav(duration_s: float, seed: int = 0, sample_rate: int = 24000) -> bytes:
    """A 16-bit mono PCM WAV of ``duration_s`` seconds: short seeded notes with soft edges.

    The same ``(duration_s, seed, sample_rate)`` always gives the same bytes.
    """
    if not isinstance(duration_s, (int, float)) or isinstance(duration_s, bool) or not math.isfinite(duration_s):
        raise ValueError(f"duration must be a number of seconds, got {duration_s!r}")
    if duration_s <= 0 or duration_s > MAX_SYNTHESISED_SECONDS:
        raise ValueError(f"duration must be > 0 and <= {MAX_SYNTHESISED_SECONDS:g} seconds, got {duration_s:g}")
    if sample_rate < 8000 or sample_rate > 192000:
        raise ValueError(f"sample rate must be between 8000 and 192000 Hz, got {sample_rate}")
    rng = random.Random(seed)
    total = max(1, round(duration_s * sample_rate))
    note_len = max(1, round(_NOTE_SECONDS * sample_rate))
    fade = max(1, note_len // 8)
    samples = array.array("h", bytes(2 * total))
    for start in range(0, total, note_len):
        frequency = rng.choice(_PENTATONIC_HZ)
        amplitude = 6000 + rng.random() * 6000
        step = 2 * math.pi * frequency / sample_rate
        end = min(total, start + note_len)
        for i in range(start, end):
            offset = i - start
            envelope = min(1.0, offset / fade, (end - i) / fade)
            samples[i] = int(amplitude * envelope * math.sin(step * offset))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(samples.tobytes())
    return out.getvalue()


def read_wav(path: str | Path, limit: int = MAX_WAV_FILE_BYTES) -> bytes:
    """The bytes of a WAV file, after checking that it really is one (ValueError says why not).

    The header is read on its own first, so a large file that is not a WAV costs 12 bytes, not its size.
    """
    try:
        _check_head(_read_head(Path(path)))
        data = read_bytes(Path(path), limit)
    except UnreadableFile as exc:
        raise ValueError(exc.reason) from None
    _check_wav(data)
    return data


def _read_head(path: Path) -> bytes | None:
    """The first bytes of a regular file; None for anything else, which ``read_bytes`` then names."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        # O_NONBLOCK: should the path have become a FIFO since the look, open must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with open(fd, "rb", closefd=True) as file:
        try:
            return file.read(_WAV_HEAD_BYTES)
        except OSError:
            return None


def _check_head(head: bytes | None) -> None:
    if head is not None and (len(head) < _WAV_HEAD_BYTES or head[:4] != b"RIFF" or head[8:12] != b"WAVE"):
        raise ValueError("not a WAV file (no RIFF/WAVE header)")


def wav_duration(wav: bytes) -> float:
    """Length of the audio in seconds."""
    frames, rate = _check_wav(wav)
    return frames / rate


def _check_wav(data: bytes) -> tuple[int, int]:
    """(frames, frame rate) of a WAV, or ValueError with a one-line reason."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file (no RIFF/WAVE header)")
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            frames, rate = reader.getnframes(), reader.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV file: {exc or 'truncated'}") from None
    if rate <= 0:
        raise ValueError("not a readable WAV file: frame rate is 0")
    if frames <= 0:
        raise ValueError("the WAV file holds no audio frames")
    return frames, rate


# Formats the mock can send: WAV as it is, and raw 16-bit little-endian mono PCM (what ``pcm16`` means
# in this API family). Others (mp3, opus, flac, aac) would need an encoder; asking for them is refused.
AUDIO_FORMATS = ("wav", "pcm16")


def encode_audio(wav: bytes, audio_format: str) -> bytes:
    """The reply's audio in ``audio_format``: the WAV itself, or its frames as 16-bit mono PCM."""
    if audio_format == "wav":
        return wav
    if audio_format != "pcm16":
        raise ValueError(f"cannot produce {audio_format!r} audio (only {', '.join(AUDIO_FORMATS)})")
    with wave.open(io.BytesIO(wav), "rb") as reader:
        width, channels, frames = reader.getsampwidth(), reader.getnchannels(), reader.readframes(reader.getnframes())
    samples = _as_16_bit(frames, width)
    if channels > 1:
        samples = array.array(
            "h", (sum(samples[i : i + channels]) // channels for i in range(0, len(samples) - channels + 1, channels))
        )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _as_16_bit(frames: bytes, width: int) -> array.array[int]:
    """Little-endian samples of any WAV width as native 16-bit integers (8-bit WAV is unsigned)."""
    if width == 1:
        return array.array("h", ((byte - 128) << 8 for byte in frames))
    if width == 2:
        samples = array.array("h", frames)
        if sys.byteorder == "big":
            samples.byteswap()
        return samples
    # 24 and 32 bits: keep the two most significant bytes of each little-endian sample.
    return array.array(
        "h",
        (
            int.from_bytes(frames[i + width - 2 : i + width], "little", signed=True)
            for i in range(0, len(frames) - width + 1, width)
        ),
    )
