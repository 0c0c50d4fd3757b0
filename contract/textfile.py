"""Read a file a user gave us (a contract document, a fixture, a WAV), failing with a one-line reason.

The contract loader, the fixture loader and the WAV reader turn every way a file can be
unreadable into one clear line; this is the one place that knows those ways.
"""

from __future__ import annotations

from pathlib import Path


class UnreadableFile(Exception):
    """Why a file could not be read as UTF-8 text, and the line where that shows (1 when it is not about text)."""

    def __init__(self, reason: str, line: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or :class:`UnreadableFile` saying why they cannot be had."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile("no such file") from None
    except IsADirectoryError:
        raise UnreadableFile("is a folder, not a file") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None


def read_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is dropped)."""
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte {exc.start})", raw[: exc.start].count(b"\n") + 1) from None
