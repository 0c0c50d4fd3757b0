"""A strict, incremental Server-Sent Events parser, and the encoder the mock uses.

It follows the WHATWG "event stream interpretation" rules (CRLF / LF / CR line
ends, a leading BOM, comments, multi-line ``data``, ``event`` / ``id`` /
``retry``), and on top of that records every framing problem that a lenient
client would silently paper over, because those are the bugs users hit in
production: a last event never terminated, bytes after ``[DONE]``, a byte
that is not UTF-8.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

BOM = "\ufeff"
_LINE_END = re.compile("\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None  # the last event ID in force when this event was dispatched
    retry: int | None = None  # a reconnection time set by this event's fields
    offset: int = 0  # byte offset in the stream where the event began


@dataclass(frozen=True)
class SSEComment:
    text: str
    offset: int = 0


@dataclass(frozen=True)
class SSEProblem:
    """A framing defect; ``kind`` is a stable name a check can select on."""

    kind: str
    message: str
    offset: int

    def __str__(self) -> str:
        return f"byte {self.offset}: {self.message}"


@dataclass
class _Pending:
    data: list[str] = field(default_factory=list)
    event: str = ""
    retry: int | None = None
    offset: int | None = None
    has_data: bool = False


class SSEParser:
    """Feed bytes as they arrive; get events and comments back as soon as they complete.

    ``terminator`` is the data of the event that ends the stream (``[DONE]``);
    anything but blank lines and comments after it is a problem.
    """

    def __init__(self, terminator: str | None = "[DONE]") -> None:
        self.terminator = terminator
        self.problems: list[SSEProblem] = []
        self.last_event_id: str | None = None
        self.done = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buffer = ""  # decoded text not yet split into lines
        self._buffer_offset = 0  # byte offset of _buffer[0]
        self._bytes_seen = 0
        self._started = False
        self._pending = _Pending()
        self._pending_cr = False  # last chunk ended with CR: a following LF belongs to it
        self._closed = False

    @property
    def bytes_seen(self) -> int:
        return self._bytes_seen

    def feed(self, chunk: bytes) -> list[SSEEvent | SSEComment]:
        if self._closed:
            raise RuntimeError("feed() after close()")
        start = self._bytes_seen
        self._bytes_seen += len(chunk)
        text = self._decode(chunk, start, final=False)
        return self._consume(text)

    def close(self) -> list[SSEEvent | SSEComment]:
        """End of stream: flush, and report an event that was never terminated."""
        if self._closed:
            return []
        text = self._decode(b"", self._bytes_seen, final=True)
        out = self._consume(text)
        self._closed = True
        if self._buffer:
            out.extend(self._line(self._buffer, self._buffer_offset))
            self.problems.append(
                SSEProblem(
                    "unterminated_line",
                    f"the stream ended inside a line ({self._buffer[:40]!r}) with no line end",
                    self._buffer_offset,
                )
            )
            self._buffer = ""
        if self._pending.has_data or self._pending.event or self._pending.offset is not None:
            self.problems.append(
                SSEProblem(
                    "unterminated_event",
                    "the last event was never terminated by a blank line; a conforming client discards it",
                    self._pending.offset or 0,
                )
            )
            self._pending = _Pending()
        return out

    # -- decoding -------------------------------------------------------------
    def _decode(self, chunk: bytes, start: int, final: bool) -> str:
        held = self._decoder.getstate()[0]  # bytes of a character split across chunks
        try:
            text = self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            position = start - len(held) + exc.start
            self.problems.append(
                SSEProblem(
                    "invalid_utf8",
                    f"byte {exc.object[exc.start : exc.start + 1]!r} is not valid UTF-8 (replaced with U+FFFD)",
                    max(position, 0),
                )
            )
            # Carry on leniently from here, as a browser would, so later problems still show.
            self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            text = self._decoder.decode(held + chunk, final=final)
        if not self._started and text:
            self._started = True
            if text.startswith(BOM):
                text = text[1:]
                self._buffer_offset += 3
        return text

    # -- lines ------------------------------------------------------------------
    def _consume(self, text: str) -> list[SSEEvent | SSEComment]:
        """Split what has arrived into lines, by position: re-slicing the buffer per line is quadratic,
        and a chunk of 32,000 one-byte comment lines must cost a scan, not a gigabyte of copies."""
        out: list[SSEEvent | SSEComment] = []
        if self._pending_cr and text:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
                self._buffer_offset += 1
        scan_from = len(self._buffer)  # what was held has no line end in it
        buffer = self._buffer + text
        position, offset = 0, self._buffer_offset
        for match in _LINE_END.finditer(buffer, scan_from):
            if match.end() == len(buffer) and match.group() == "\r" and not self._closed:
                self._pending_cr = True  # a CR at the very end of what we have: it may be half of a CRLF
            line = buffer[position : match.start()]
            out.extend(self._line(line, offset))
            offset += _utf8_length(buffer[position : match.end()])
            position = match.end()
        self._buffer = buffer[position:]
        self._buffer_offset = offset
        return out

    def _line(self, line: str, offset: int) -> list[SSEEvent | SSEComment]:
        if self.done and line and not line.startswith(":"):
            self.problems.append(
                SSEProblem("after_terminator", f"{line[:60]!r} after the {self.terminator} event", offset)
            )
        if line == "":
            event = self._dispatch()
            return [event] if event else []
        if line.startswith(":"):
            return [SSEComment(line[1:].removeprefix(" "), offset)]
        name, sep, value = line.partition(":")
        value = value.removeprefix(" ") if sep else ""
        pending = self._pending
        if pending.offset is None:
            pending.offset = offset
        if name == "data":
            pending.data.append(value)
            pending.has_data = True
        elif name == "event":
            pending.event = value
        elif name == "id":
            if "\0" in value:
                self.problems.append(SSEProblem("bad_id", "an id containing NULL is ignored", offset))
            else:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                pending.retry = int(value)
            else:
                self.problems.append(
                    SSEProblem("bad_retry", f"retry {value!r} is not a number of milliseconds; ignored", offset)
                )
        else:
            self.problems.append(SSEProblem("unknown_field", f"unknown field {name[:40]!r} is ignored", offset))
        return []

    def _dispatch(self) -> SSEEvent | None:
        pending, self._pending = self._pending, _Pending()
        if not pending.has_data:
            return None  # WHATWG: an empty data buffer dispatches nothing
        data = "\n".join(pending.data)
        event = SSEEvent(
            data=data,
            event=pending.event or "message",
            id=self.last_event_id,
            retry=pending.retry,
            offset=pending.offset or 0,
        )
        if self.done:
            return event
        if self.terminator is not None and data == self.terminator:
            self.done = True
        return event


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def parse_stream(
    data: bytes, terminator: str | None = "[DONE]"
) -> tuple[list[SSEEvent | SSEComment], list[SSEProblem]]:
    """Parse a whole byte string at once (tests, fixtures, recorded streams)."""
    parser = SSEParser(terminator)
    items = parser.feed(data)
    items.extend(parser.close())
    return items, parser.problems


def encode_event(data: str, event: str | None = None, id: str | None = None, retry: int | None = None) -> bytes:
    """One event as bytes, LF line ends, a ``data:`` line per line of ``data``."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_comment(text: str) -> bytes:
    return f": {text}\n\n".encode()
