"""Undo a response's content codings in bounded steps, so a decompression bomb meets the caps in time.

httpx unpacks each network chunk whole: a few KB of ``Content-Encoding: gzip, gzip`` become 1 GiB in
one piece before any cap or deadline is looked at. So the checker reads the raw bytes and unpacks them
here, at most DECODE_STEP bytes at a time, and checks its limits after each step. The codings are the
ones httpx undoes: gzip, deflate (zlib-wrapped or raw), and zstd when ``zstandard`` is installed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import IO, Protocol, cast

import httpx

DECODE_STEP = 64 * 1024


class _Reader(Protocol):
    def read(self, size: int) -> bytes: ...


class _RawReader:
    """The raw body as a reader: ``read`` returns what has arrived (at most ``size``), ``b""`` only at the end."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._held = b""

    def read(self, size: int) -> bytes:
        while not self._held:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._held = chunk
        piece, self._held = self._held[:size], self._held[size:]
        return piece


class _ZlibReader:
    """gzip or deflate over ``inner``, never more than ``size`` bytes out of one call."""

    def __init__(self, inner: _Reader, gzip: bool, check: Callable[[], None]) -> None:
        self._inner = inner
        self._check = check
        self._gzip = gzip
        self._unpacker = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._first = True  # deflate: the first bytes tell a zlib wrapper from raw deflate, as httpx does
        self._tail = b""
        self._pending = False  # the last call filled its output: zlib may hold more without new input
        self._ended = False

    def read(self, size: int) -> bytes:
        while True:
            if self._tail or self._pending:
                piece = self._unpack(self._tail, size)
                if piece:
                    return piece
            if self._ended or self._unpacker.eof:
                return b""
            self._check()  # input that unpacks to nothing is no step: without this it could spin for minutes
            data = self._inner.read(DECODE_STEP)
            if not data:
                self._ended = True
                return self._unpacker.flush()  # everything was unpacked step by step: at most a few bytes
            self._tail = data

    def _unpack(self, data: bytes, size: int) -> bytes:
        try:
            piece = self._unpacker.decompress(data, size)
        except zlib.error as exc:
            if self._gzip or not self._first:
                raise httpx.DecodingError(f"{'gzip' if self._gzip else 'deflate'}: {exc}") from None
            self._unpacker = zlib.decompressobj(-zlib.MAX_WBITS)
            self._first = False
            return self._unpack(data, size)
        self._first = False
        self._tail = self._unpacker.unconsumed_tail
        self._pending = len(piece) == size
        return piece


class _ZstdReader:
    """zstd over ``inner`` (when ``zstandard`` is installed, httpx asks for it), in steps of ``size``."""

    def __init__(self, inner: _Reader, check: Callable[[], None]) -> None:
        import zstandard

        self._check = check
        self._source = _EndWatch(inner)
        self._error: type[Exception] = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], self._source), read_size=DECODE_STEP, read_across_frames=True
        )

    def read(self, size: int) -> bytes:
        while True:
            try:
                piece = self._reader.read1(size)
            except self._error as exc:
                raise httpx.DecodingError(f"zstd: {exc}") from None
            if piece or self._source.ended:
                return piece
            self._check()


class _EndWatch:
    """A reader that remembers when ``inner`` ran dry, since zstd's ``read1`` may return nothing before that."""

    def __init__(self, inner: _Reader) -> None:
        self._inner = inner
        self.ended = False

    def read(self, size: int) -> bytes:
        data = self._inner.read(size)
        self.ended = not data
        return data


def _decoder(encoding: str, inner: _Reader, check: Callable[[], None]) -> _Reader:
    """The reader that undoes one content coding; ``identity`` and codings httpx would not undo pass as they are."""
    if encoding in ("gzip", "x-gzip"):
        return _ZlibReader(inner, gzip=True, check=check)
    if encoding == "deflate":
        return _ZlibReader(inner, gzip=False, check=check)
    if encoding == "zstd" and _has_zstandard():
        return _ZstdReader(inner, check)
    return inner


def _has_zstandard() -> bool:
    """httpx asks for zstd (and undoes it) exactly when ``zstandard`` is installed; so does the checker."""
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def decoded_pieces(response: httpx.Response, check: Callable[[], None]) -> Iterator[bytes]:
    """The body, its content codings undone in the reverse of the order applied, in pieces of at most DECODE_STEP.

    ``check`` is called whenever unpacking takes a step that yields nothing (input that unpacks to
    nothing reads no socket, so no socket deadline would notice); it raises to stop.
    """
    reader: _Reader = _RawReader(response.iter_raw())
    for encoding in reversed(response.headers.get_list("content-encoding", split_commas=True)):
        reader = _decoder(encoding.strip().lower(), reader, check)
    while piece := reader.read(DECODE_STEP):
        yield piece
