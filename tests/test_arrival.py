"""A stream's plan counts from its request's arrival, as a real server's time to first token does: the
protocol stamps the moment a request's head arrived, and the wire plays the writes from that moment."""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.types import Receive, Scope, Send

from mockserver.faults import Write
from mockserver.protocol import arrival_time
from mockserver.serve import ServerThread
from mockserver.wire import play


async def _timed(writes: list[Write], start: float | None) -> list[float]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    return [loop.time() - began async for _ in play(writes, start)]


def test_a_plan_that_started_before_the_app_got_round_to_it_keeps_its_times() -> None:
    async def main() -> tuple[list[float], list[float]]:
        loop = asyncio.get_running_loop()
        writes = [Write(0.0, b"role"), Write(0.3, b"token"), Write(0.1, b"token")]
        late = await _timed(writes, start=loop.time() - 0.2)  # the request waited 0.2 s in the queue
        fresh = await _timed(writes, start=None)
        return late, fresh

    late, fresh = asyncio.run(main())
    assert late[0] < 0.05, "the role chunk goes at once"
    assert 0.09 <= late[1] < 0.25, f"the first token was due 0.3 s after arrival, 0.1 s from now: {late[1]:.3f} s"
    assert 0.19 <= late[2] < 1.0, "the next one is due 0.1 s after it, counted from the same arrival"
    assert fresh[1] >= 0.29, "without an arrival, the plan starts now"


def test_a_start_in_the_future_is_not_waited_for() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        return await _timed([Write(0.0, b"role"), Write(0.1, b"token")], start=loop.time() + 5)

    times = asyncio.run(main())
    assert times[1] < 1.0, "a start after now is taken as now"


async def _arrival_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    loop = asyncio.get_running_loop()
    arrived = arrival_time(scope)
    age = None if arrived is None else loop.time() - arrived
    body = b"none" if age is None else f"{age:.6f}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def test_the_server_stamps_each_request_with_the_moment_its_head_was_read() -> None:
    with ServerThread(_arrival_app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        ages = []
        for _ in range(3):  # on one kept-alive connection: every request gets its own stamp
            started = time.monotonic()
            answer = client.get("/")
            elapsed = time.monotonic() - started
            assert answer.text != "none", "the request was not stamped"
            ages.append(float(answer.text))
            # uvloop's clock moves in whole milliseconds, once per loop iteration, and the kernel's arrival
            # time (receive_time) in its ticks of 1 to 10 ms: a margin of one tick
            assert 0 <= ages[-1] <= elapsed + 0.011, "the stamp is from this request, read before the app ran"
