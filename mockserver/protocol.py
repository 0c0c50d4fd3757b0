"""uvicorn's HTTP/1.1 protocol with a deadline for every request head.

uvicorn times out a kept-alive connection only after a response; a client that
connects and sends nothing, or sends its request line a byte at a time, holds
the connection for ever, and two thousand of them hold the server. Here each
connection has :data:`HEAD_TIMEOUT_S` to deliver a complete request head, from
when it opens and again whenever it starts the next request; then it is closed.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 10.0


class HeadDeadlineProtocol(H11Protocol):
    head_timeout: float = HEAD_TIMEOUT_S
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head_timer()  # waiting for (the rest of) a request head
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_head_timer()  # the head is complete: the request is the app's now

    def on_response_complete(self) -> None:
        self._disarm_head_timer()  # uvicorn's keep-alive timeout covers the idle time until the next request
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
