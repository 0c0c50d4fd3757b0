"""Admission in turns: a bounded number of requests start their work per turn of the event loop.

The loop reads its sockets once per turn, then runs everything that became ready. When a burst of a
thousand requests arrives, a thousand tasks become ready together, and the turn that runs them lasts as
long as their combined work (well over a tenth of a second), while the other streams' chunks that fall
due wait behind it and the requests still in the sockets wait unread. Letting a few start per turn keeps
every turn short: the loop keeps reading, and sending chunks on time, while a burst is taken in. The
work is the same and in the same order; a request's plan counts from its arrival, not from its
admission, so the wait does not show in its time to first token.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

REQUESTS_PER_TURN = 16  # at about 0.1 ms of work each, a turn of a burst stays under 2 ms


class _Turns:
    """The queue of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.admitted = 0  # in this turn
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.next_turn_scheduled = False


class Admission:
    """A first-come queue that lets ``per_turn`` requests through per turn of the loop they are served on."""

    def __init__(self, per_turn: int = REQUESTS_PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError(f"per_turn must be at least 1, not {per_turn}")
        self.per_turn = per_turn
        self._local = threading.local()  # an app may be served by several loops, each in its own thread

    async def enter(self) -> None:
        """Return at once while this turn has room and nobody waits; otherwise wait for a later turn, in order."""
        turns = self._turns()
        if turns.admitted < self.per_turn and not turns.waiting:
            turns.admitted += 1
            self._schedule_next_turn(turns)
            return
        future = turns.loop.create_future()
        turns.waiting.append(future)
        self._schedule_next_turn(turns)
        await future

    def waiting(self) -> int:
        """How many requests of this thread's loop wait for their turn."""
        return len(self._turns().waiting)

    def _turns(self) -> _Turns:
        loop = asyncio.get_running_loop()
        turns: _Turns | None = getattr(self._local, "turns", None)
        if turns is None or turns.loop is not loop:
            turns = self._local.turns = _Turns(loop)
        return turns

    def _schedule_next_turn(self, turns: _Turns) -> None:
        if not turns.next_turn_scheduled:
            turns.next_turn_scheduled = True
            turns.loop.call_soon(self._next_turn, turns)

    def _next_turn(self, turns: _Turns) -> None:
        """Runs once per turn while anyone waits or was let in: the new turn's room goes to the first waiting."""
        turns.next_turn_scheduled = False
        turns.admitted = 0
        while turns.waiting and turns.admitted < self.per_turn:
            future = turns.waiting.popleft()
            if not future.done():  # a waiting request whose client left was cancelled: it takes no room
                future.set_result(None)
                turns.admitted += 1
        if turns.waiting or turns.admitted:
            self._schedule_next_turn(turns)
