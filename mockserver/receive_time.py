"""When a request's bytes reached the machine, from the kernel, not from when the loop read them.

Under a burst, the event loop reads a thousand request heads one after another, about 30 µs each, and
in several batches with other work between them; the last head of the burst is read tens of
milliseconds after it arrived. A stamp taken when the loop reads it would make that request's time to
first token late by as much. Linux keeps, for every TCP connection, the age of the last data it
received (``tcpi_last_data_recv`` in ``TCP_INFO``, in milliseconds, with the kernel's tick as its
resolution: 1 to 10 ms). Read when a head is complete, it gives the head's arrival. Where it cannot be
had (another system, a Unix socket), the caller keeps the loop's own stamp.
"""

from __future__ import annotations

import socket
import struct
import threading
from asyncio import AbstractEventLoop, BaseTransport
from typing import Any

TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)  # Linux only
TCP_INFO_SIZE = 104  # the fields up to tcpi_rcv_space; the kernel fills what it has
LAST_DATA_RECV = struct.Struct("=I")  # u32 milliseconds since the last data was received
LAST_DATA_RECV_OFFSET = 52  # after 8 one-byte fields and 11 u32s (rto ... last_ack_sent) of struct tcp_info

_turn = threading.local()  # each event loop runs in one thread: the loop turn's first read, per thread


def connection_socket(transport: BaseTransport) -> Any | None:
    """The socket of ``transport`` for ``receive_age``, or None when the kernel cannot say (not TCP, not Linux)."""
    if TCP_INFO is None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or receive_age(sock) is None:
        return None
    return sock


def receive_age(sock: Any) -> float | None:
    """Seconds since the kernel last received data on ``sock``; None when it does not keep that."""
    if TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_SIZE)
    except (OSError, AttributeError, TypeError, ValueError):  # a Unix socket, a closed one, a stand-in
        return None
    if not isinstance(info, bytes) or len(info) < LAST_DATA_RECV_OFFSET + LAST_DATA_RECV.size:
        return None
    return float(LAST_DATA_RECV.unpack_from(info, LAST_DATA_RECV_OFFSET)[0]) / 1000


def turn_started(loop: AbstractEventLoop) -> float:
    """The loop time of the first read in the current turn of ``loop``.

    The loop polls its sockets once per turn and then hands every piece it found to its protocol, one
    after another; all of them were there when the poll returned, so the first one's time is the
    truest stamp for each, on any system. It is cleared at the start of the next turn.
    """
    started: float | None = getattr(_turn, "started", None)
    if started is None:
        started = _turn.started = loop.time()
        loop.call_soon(_end_turn)
    return started


def _end_turn() -> None:
    _turn.started = None
