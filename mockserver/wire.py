"""The wire: a reply's planned writes sent at their times, and a response that can drop its connection.

A fault plan and its pacing make a reply a list of timed writes (``faults``);
this module sends them as one server would, coalescing what is due together,
and ends a response by closing the connection when the plan says so. The
recorder relays an upstream's stream with the same response type.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .faults import Disconnect, Write
from .protocol import mark_planned_drop

logger = logging.getLogger("mockserver")


async def play(writes: list[Write | Disconnect], start: float | None = None) -> AsyncIterator[bytes | Disconnect]:
    """Yield each write at its planned time; waits are measured from ``start`` (the request's arrival, on the
    loop's clock; now when None), so they do not drift, and a request that waited in a busy server's queue
    still gets its first token at its time to first token from arrival.

    Writes that are due together go out as one network write, as a server's send buffer would have them:
    a reply with no delay is one write, and a stream that fell behind (a thousand of them on one busy
    process) catches up in one write instead of paying a wake-up and a send for every chunk.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() if start is None else min(start, loop.time())
    ready: list[bytes] = []
    for write in writes:
        if isinstance(write, Disconnect):
            if ready:
                yield b"".join(ready)
            yield write
            return
        due += write.delay
        if write.delay > 0 and due > loop.time():
            if ready:
                yield b"".join(ready)
                ready = []
            await asyncio.sleep(due - loop.time())
        ready.append(write.data)
    if ready:
        yield b"".join(ready)


class WireResponse(StreamingResponse):
    """A streamed response that can also end by dropping the connection, as a crashed server does.

    It stops as soon as the client leaves, as Starlette's does, but watches for that with two plain
    asyncio tasks: anyio's task group, which Starlette uses, cost more per response than everything
    else a short reply needs, and a thousand paced streams each keep one.
    """

    def __init__(
        self,
        writes: AsyncIterator[bytes | Disconnect],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__((), status_code=status_code, headers=headers, media_type=media_type)
        self.writes = writes
        self.dropped_by: str | None = None  # the fault that cut the response, if one did

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        watching = asyncio.ensure_future(until_disconnect(receive))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)
        if self.dropped_by is not None:  # uvicorn then logs the cut at DEBUG, not as an ERROR
            mark_planned_drop(scope, self.dropped_by)
        failure = None if streaming.cancelled() else streaming.exception()
        if failure is not None and not isinstance(failure, OSError):  # a write to a client that left: no error
            raise failure

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for piece in self.writes:
            if isinstance(piece, Disconnect):
                logger.info("fault: dropping the connection mid-response")
                self.dropped_by = piece.fault
                return  # the server closes the connection: the client sees an incomplete body
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def until_disconnect(receive: Receive) -> None:
    """Return when the client has gone (the request body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
