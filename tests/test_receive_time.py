"""A request's arrival is when its bytes reached the machine: the kernel's word where it keeps one, and
the loop turn's first read otherwise; a request that came while the loop was busy keeps its true arrival."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time

import pytest
from starlette.types import Receive, Scope, Send

from mockserver.protocol import arrival_time
from mockserver.receive_time import connection_socket, receive_age, turn_started
from mockserver.serve import ServerThread

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")


@linux_only
def test_the_kernel_says_how_long_ago_the_last_bytes_came() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            client.sendall(b"hello")
            sent = time.monotonic()
            time.sleep(0.08)
            age = receive_age(accepted)
            elapsed = time.monotonic() - sent
            assert age is not None
            # the kernel counts in its ticks (1 to 10 ms): a tick's margin either way
            assert 0.08 - 0.011 <= age <= elapsed + 0.011, (age, elapsed)


def test_where_the_kernel_cannot_say_there_is_no_age() -> None:
    left, right = socket.socketpair()  # a Unix socket keeps no TCP_INFO
    with left, right:
        assert receive_age(left) is None

    class NotASocket:
        pass

    assert receive_age(NotASocket()) is None

    class Transport(asyncio.BaseTransport):
        def get_extra_info(self, name: str, default: object = None) -> object:
            return None

    assert connection_socket(Transport()) is None


def test_every_read_of_one_turn_gets_the_turn_s_first_time() -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        first = turn_started(loop)
        time.sleep(0.02)  # the same turn, later
        again = turn_started(loop)
        await asyncio.sleep(0.02)  # a later turn
        return first, again, turn_started(loop)

    first, again, later = asyncio.run(main())
    assert again == first
    assert later >= first + 0.015


async def _age_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/block`` holds the loop for 0.4 s; any other path answers the age of its request's arrival stamp."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/block":
        time.sleep(0.4)  # on purpose: the loop reads nothing meanwhile
        body = b"blocked"
    else:
        arrived = arrival_time(scope)
        body = b"none" if arrived is None else f"{asyncio.get_running_loop().time() - arrived:.6f}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).split(b"\r\n\r\n", 1)[1]


@linux_only
def test_a_request_that_came_while_the_loop_was_busy_is_stamped_when_it_came() -> None:
    with ServerThread(_age_app) as server:
        blocker = threading.Thread(target=_get, args=(server.port, "/block"))
        blocker.start()
        time.sleep(0.1)  # the loop is now inside the 0.4 s block
        age = _get(server.port, "/age")
        blocker.join()
    assert age != b"none"
    # sent about 0.1 s into the block, read when it ended (~0.3 s later): stamped on reading, the age would be ~0
    assert float(age) >= 0.15, f"the stamp is when the loop read the request, not when it came: {age!r}"
