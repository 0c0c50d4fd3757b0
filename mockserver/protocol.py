"""uvicorn's HTTP/1.1 protocol with a deadline for every request head.

uvicorn times out a kept-alive connection only after a response; a client that
connects and sends nothing, or sends its request line a byte at a time, holds
the connection for ever, and two thousand of them hold the server. Here each
connection has :data:`HEAD_TIMEOUT_S` to deliver a complete request head, from
when it opens and again whenever it starts the next request; then it is closed.

The deadline rides on uvicorn's fastest parser: httptools when it is installed
(a C parser, several times faster per request than h11), h11 otherwise, which
``mockserver --version`` then says.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: uvicorn's pure-Python parser serves
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

HEAD_TIMEOUT_S = 10.0


class _HeadDeadline:
    """The deadline, for either of uvicorn's protocols.

    Requests on a kept-alive connection come thousands of times a second, so arming a timer for each
    head would cost more than parsing it. The deadline is a number set and cleared per request; one
    timer per connection wakes at the earliest time it could pass and checks it.
    """

    head_timeout: float = HEAD_TIMEOUT_S
    _head_due: float | None = None  # when the head being waited for must be complete; None: not waiting
    _head_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._await_head()  # waiting for (the rest of) a request head
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not None and not self.cycle.response_complete:
            self._head_due = None  # the head is complete: the request is the app's now

    def on_response_complete(self) -> None:
        self._head_due = None  # uvicorn's keep-alive timeout covers the idle time until the next request
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
