"""Read a file a user gave us (a contract document, a fixture, a WAV), failing with a one-line reason.

The contract loader, the fixture loader and the WAV reader turn every way a file can be
unreadable into one clear line; this is the one place that knows those ways. That includes
paths that are not plain files at all: a FIFO would block ``open`` forever, a link to
``/dev/zero`` would never end, a symlink loop or a dangling link cannot be read. So the
path is looked at before it is opened, and only a regular file is read, and never more than
a given limit.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class UnreadableFile(Exception):
    """Why a file could not be read as UTF-8 text, and the line where that shows (1 when it is not about text)."""

    def __init__(self, reason: str, line: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes (at most ``limit``), or :class:`UnreadableFile` saying why they cannot be had."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UnreadableFile(
            "a symlink to nothing (its target does not exist)" if os.path.islink(path) else "no such file"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnreadableFile("a symlink loop (the links point at each other)") from None
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    _check_kind(info.st_mode)
    _check_size(info.st_size, limit)
    try:
        # O_NONBLOCK: should the path have become a FIFO since the look, open must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    with open(fd, "rb", closefd=True) as file:
        try:
            info = os.fstat(file.fileno())
            _check_kind(info.st_mode)
            _check_size(info.st_size, limit)
            data = file.read() if limit is None else file.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    _check_size(len(data), limit)  # it grew while being read
    return data


def read_text(path: Path, limit: int | None = None) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is dropped); at most ``limit`` bytes."""
    raw = read_bytes(path, limit)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte {exc.start})", raw[: exc.start].count(b"\n") + 1) from None


def _check_kind(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise UnreadableFile("is a folder, not a file")
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    raise UnreadableFile(f"is {kind}, not a file; only regular files are read")


def _check_size(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise UnreadableFile(f"the file is {_megabytes(size)}, more than the limit of {_megabytes(limit)}")


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"
