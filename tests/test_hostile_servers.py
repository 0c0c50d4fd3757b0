"""contract-check against servers that attack the checker: every run ends, bounded, with a failure.

Each server is a small socket or Starlette server on a loopback port. The bounds leave room for a
loaded 2-core machine; a checker without the guard would not end at all (or would end in a traceback).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from contract.report import console_text
from contract.runner import run
from mockserver.serve import ServerThread

from brokenservers import RawServer, reference_app

SEED = 5
DEEP = 100_000


def _trickle_head(sock: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 100:
        sock.sendall(bytes([byte]))
        time.sleep(0.05)


def _endless_continue(sock: socket.socket) -> None:
    for _ in range(10_000):
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.01)


def _timed_run(url: str, **options: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = run(url, seed=SEED, timeout=1.0, max_examples=3, **options)
    return result, time.monotonic() - started


def test_a_status_line_trickled_byte_by_byte_is_cut_at_the_deadline() -> None:
    with RawServer(_trickle_head) as server:
        result, elapsed = _timed_run(server.url, phases=["realistic"])
    assert [f.check for f in result.failures] == ["transport_ok"]
    assert "no complete response head within the 1 s deadline" in result.failures[0].message
    assert result.aborted and elapsed < 30, elapsed


def test_endless_100_continue_is_cut_at_the_deadline() -> None:
    with RawServer(_endless_continue) as server:
        result, elapsed = _timed_run(server.url, phases=["realistic"])
    assert [f.check for f in result.failures] == ["transport_ok"]
    assert "deadline" in result.failures[0].message
    assert result.aborted and elapsed < 30, elapsed


def _deep_app() -> Starlette:
    """JSON nested 100,000 deep as a reply body, and as the data of the first stream event."""
    deep = "[" * DEEP + "]" * DEEP

    async def answer(request: Request) -> Response:
        body = await request.json()
        if body.get("stream", True):
            async def events():
                yield f"data: {deep}\n\n".encode()
                yield b"data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return Response(deep, media_type="application/json")

    return Starlette(routes=[Route("/chat/completions", answer, methods=["POST"])])


def test_json_nested_100000_deep_is_a_failure_not_a_recursion_error() -> None:
    with ServerThread(_deep_app()) as server:
        result, elapsed = _timed_run(server.url, phases=["coverage"])
    failing = {f.check for f in result.failures}
    assert {"response_body_valid", "chunks_valid"} <= failing, failing
    assert any("not JSON" in f.message for f in result.failures)
    assert elapsed < 60, elapsed


def test_control_bytes_from_the_server_are_shown_escaped() -> None:
    app = reference_app("server_error")
    async def hostile(scope, receive, send):  # the 500 body carries a terminal escape sequence and a bell
        if scope["type"] != "http":
            return await app(scope, receive, send)
        await Response('{"error": {"message": "\x1b[2J\x1b[31mboom\x07", "type": "server_error"}}', 500,
                       media_type="application/json")(scope, receive, send)

    with ServerThread(hostile) as server:
        result, _ = _timed_run(server.url, phases=["realistic"])
    text = console_text(result)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mboom\\x07" in text


def test_shrinking_is_bounded_by_max_examples() -> None:
    """Against a server broken on most requests, a phase sends at most 6 x max_examples + 40 requests."""
    with ServerThread(reference_app("server_error")) as server:
        result = run(server.url, seed=SEED, timeout=2.0, max_examples=10, phases=["realistic"])
    assert result.failures_for("not_a_server_error")
    assert result.requests_sent <= 2 * (6 * 10 + 40), result.requests_sent  # counterparts count twice
