"""uvicorn's HTTP/1.1 protocol with a deadline and a size bound for every request head.

uvicorn times out a kept-alive connection only after a response; a client that
connects and sends nothing, or sends its request line a byte at a time, holds
the connection for ever, and two thousand of them hold the server. Here each
connection has :data:`HEAD_TIMEOUT_S` to deliver a complete request head, from
when it opens and again whenever it starts the next request; then it is closed.

A head is also bounded in size, :data:`MAX_HEAD_BYTES`: httptools buffers a header of any length,
so ten clients each sending a 64 MB header held 640 MB (and the journal kept it). A longer head gets
431 and the connection is closed, before the parser has buffered it.

A response that a ``disconnect`` fault cuts on purpose ends without its last body message, which
uvicorn logs as an ERROR ("ASGI callable returned without completing response."). The app marks such
a response (:func:`mark_planned_drop`), and the cut is then logged at DEBUG with the fault's name.

Each request is stamped with its arrival (:func:`arrival_time`), which its stream's plan counts from:
when the kernel received the piece that completed its head (``receive_time``), or the loop turn's first
read where the kernel cannot say.

The deadline rides on uvicorn's fastest parser: httptools when it is installed
(a C parser, several times faster per request than h11), h11 otherwise, which
``mockserver --version`` then says. What of uvicorn's internals all this relies on
is listed in :mod:`mockserver.uvicorn_compat`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from .receive_time import connection_socket, receive_age, turn_started
from .uvicorn_compat import INCOMPLETE_RESPONSE, H11Protocol, HttpToolsProtocol

HEAD_TIMEOUT_S = 10.0
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; browsers and SDKs send a few KiB at most
_HEAD_ENDS = (b"\n\r\n", b"\n\n")  # the blank line after the headers (parsers accept a bare LF too)

logger = logging.getLogger(__name__)
PLANNED_DROP = "mockserver.planned_drop"  # in the scope's state: the fault that cut this response on purpose
ARRIVED = "mockserver.arrived"  # in the scope's state: the loop time at which the request's head was read


def arrival_time(scope: Any) -> float | None:
    """When the request of ``scope`` arrived, on the event loop's clock; None when no protocol of ours read it.

    A real server's time to first token counts from the request's arrival, not from when the app got round
    to it: under a burst of a thousand requests, the last waits its turn in the loop's queue first.
    """
    state = scope.get("state")
    arrived = state.get(ARRIVED) if isinstance(state, dict) else None
    return arrived if isinstance(arrived, float) else None


def mark_planned_drop(scope: Any, fault: str) -> None:
    """Say that ``fault`` cut the response of ``scope`` on purpose, so uvicorn's error for it is not an error.

    The mark goes into ``scope["state"]``, a dict that middleware copying the scope still shares.
    """
    scope.setdefault("state", {})[PLANNED_DROP] = fault


class _PlannedDropLogger:
    """uvicorn's error logger, for one connection: a response cut by a planned fault is logged at DEBUG."""

    def __init__(self, log: logging.Logger, protocol: _HeadDeadline) -> None:
        self._log = log
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        fault = self._protocol.planned_drop() if msg == INCOMPLETE_RESPONSE else None
        if fault is None:
            self._log.error(msg, *args, **kwargs)
        else:
            self._log.debug("fault %s: the response was cut on purpose, as the fixture asks", fault)


def _too_large_response() -> bytes:
    """A 431 with the contract's Error body; the connection closes after it."""
    message = f"the request line and headers are over {MAX_HEAD_BYTES:,} bytes"
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": "request_head_too_large"}
    body = json.dumps({"error": error}).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


TOO_LARGE_RESPONSE = _too_large_response()


class _HeadDeadline:
    """The deadline, for either of uvicorn's protocols.

    Requests on a kept-alive connection come thousands of times a second, so arming a timer for each
    head would cost more than parsing it. The deadline is a number set and cleared per request; one
    timer per connection wakes at the earliest time it could pass and checks it.
    """

    head_timeout: float = HEAD_TIMEOUT_S
    max_head_bytes: int = MAX_HEAD_BYTES
    _head_due: float | None = None  # when the head being waited for must be complete; None: not waiting
    _head_bytes = 0  # bytes received while waiting for the current head
    _head_tail = b""  # the last bytes of the previous piece: a blank line may span two pieces
    _head_timer: asyncio.TimerHandle | None = None
    _receive_socket: Any = None  # where the kernel says when the connection's last bytes arrived; None: it cannot
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    logger: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.logger = _PlannedDropLogger(self.logger, self)  # each request's cycle takes it from here
        self._receive_socket = connection_socket(transport)
        self._await_head()

    def planned_drop(self) -> str | None:
        """The fault that cut the current response on purpose, if one did."""
        state = self.cycle.scope.get("state") if self.cycle is not None else None
        return state.get(PLANNED_DROP) if isinstance(state, dict) else None

    def data_received(self, data: bytes) -> None:
        read_at = None  # set while a head is awaited: only then can this piece complete one
        if self.cycle is None or self.cycle.response_complete:
            read_at = turn_started(self.loop)
            self._await_head()  # waiting for (the rest of) a request head
            if not self._head_fits(data):
                self._refuse_head()
                return
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not None and not self.cycle.response_complete:
            if read_at is not None:  # this piece completed the head: the request arrived with it
                self.cycle.scope.setdefault("state", {})[ARRIVED] = self._arrival(read_at)
            self._head_due = None  # the head is complete: the request is the app's now
            self._head_bytes, self._head_tail = 0, b""

    def _arrival(self, read_at: float) -> float:
        """When the piece that completed the head reached the machine: the kernel's word where it has one
        (the loop may have read it long after, see ``receive_time``), else the loop turn's."""
        age = receive_age(self._receive_socket) if self._receive_socket is not None else None
        return read_at if age is None else min(read_at, self.loop.time() - age)

    def _head_fits(self, data: bytes) -> bool:
        """Whether the head being received stays within the bound, counting ``data``.

        The common case is one cheap addition; only past the bound is the end of the head looked for,
        since the same piece may carry a short head and a long body.
        """
        before = self._head_bytes
        self._head_bytes += len(data)
        if self._head_bytes <= self.max_head_bytes:
            self._head_tail = data[-3:]
            return True
        joined = self._head_tail + data
        ends = [found for found in (joined.find(end) for end in _HEAD_ENDS) if found >= 0]
        return bool(ends) and before - len(self._head_tail) + min(ends) <= self.max_head_bytes

    def _refuse_head(self) -> None:
        logger.warning("refused a request whose head is over %d bytes (431)", self.max_head_bytes)
        self._head_due = None
        if not self.transport.is_closing():
            self.transport.write(TOO_LARGE_RESPONSE)
            self.transport.close()

    def on_response_complete(self) -> None:
        self._head_due = None  # uvicorn's keep-alive timeout covers the idle time until the next request
        self._head_bytes, self._head_tail = 0, b""
        super().on_response_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_due = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _await_head(self) -> None:
        if self._head_due is None:
            self._head_due = self.loop.time() + self.head_timeout
            if self._head_timer is None:
                self._head_timer = self.loop.call_at(self._head_due, self._check_head)

    def _check_head(self) -> None:
        self._head_timer = None
        if self._head_due is None:
            return
        if self.loop.time() < self._head_due:  # a later head is awaited: wake again at its deadline
            self._head_timer = self.loop.call_at(self._head_due, self._check_head)
        elif not self.transport.is_closing():
            self.transport.close()


class H11HeadDeadlineProtocol(_HeadDeadline, H11Protocol):
    """The deadline on uvicorn's h11 protocol (pure Python)."""


if HttpToolsProtocol is not None:

    class HttpToolsHeadDeadlineProtocol(_HeadDeadline, HttpToolsProtocol):
        """The deadline on uvicorn's httptools protocol (C)."""

    HeadDeadlineProtocol: type = HttpToolsHeadDeadlineProtocol
else:
    HeadDeadlineProtocol = H11HeadDeadlineProtocol
