"""contract-check against servers that attack the checker: every run ends, bounded, with a failure.

Each server is a small socket or Starlette server on a loopback port. The bounds leave room for a
loaded 2-core machine; a checker without the guard would not end at all (or would end in a traceback).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from brokenservers import RawServer, reference_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from contract.report import console_text
from contract.runner import run
from mockserver.serve import ServerThread

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


@pytest.mark.parametrize(
    "respond, message",
    [
        (_trickle_head, "no complete response head within the 1 s deadline"),
        (_endless_continue, "deadline"),
    ],
    ids=["status-line-trickled-byte-by-byte", "endless-100-continue"],
)
def test_a_response_head_that_never_ends_is_cut_at_the_deadline(respond: Any, message: str) -> None:
    with RawServer(respond) as server:
        result, elapsed = _timed_run(server.url, phases=["realistic"])
    assert [f.check for f in result.failures] == ["transport_ok"]
    assert message in result.failures[0].message
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
        await Response(
            '{"error": {"message": "\x1b[2J\x1b[31mboom\x07", "type": "server_error"}}',
            500,
            media_type="application/json",
        )(scope, receive, send)

    with ServerThread(hostile) as server:
        result, _ = _timed_run(server.url, phases=["realistic"])
    text = console_text(result)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mboom\\x07" in text


def test_reducing_is_bounded() -> None:
    """Against a server broken on many requests, a phase sends its examples and at most its reduction budget
    (counterparts count twice): never the thousand requests an unbounded search would."""
    from contract.runner import REDUCE_PER_CHECK, REDUCE_PER_PHASE_FACTOR

    with ServerThread(reference_app("server_error")) as server:
        result = run(server.url, seed=SEED, timeout=2.0, max_examples=10, phases=["realistic"])
    assert result.failures_for("not_a_server_error")
    budget = max(REDUCE_PER_CHECK, REDUCE_PER_PHASE_FACTOR * 10)
    assert result.requests_sent <= 2 * 10 + 2 * budget, result.requests_sent


# -- the rest of the hostile servers: each run ends bounded in time and memory, with a failure ----------


def _streaming_app(chunks: Any, media_type: str, headers: dict[str, str] | None = None) -> Starlette:
    async def answer(request: Request) -> Response:
        await request.body()

        async def body():
            for chunk in chunks():
                yield chunk

        return StreamingResponse(body(), media_type=media_type, headers=headers)

    return Starlette(routes=[Route("/chat/completions", answer, methods=["POST"])])


def _gzip_bomb() -> bytes:
    """512 MB of zeros, gzip-compressed to about half a megabyte (built once)."""
    import zlib

    if not hasattr(_gzip_bomb, "cached"):
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = bytes(1 << 20)
        _gzip_bomb.cached = b"".join(packer.compress(block) for _ in range(512)) + packer.flush()  # type: ignore[attr-defined]
    return _gzip_bomb.cached  # type: ignore[attr-defined]


def _short_body(sock: socket.socket) -> None:
    sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"id": ')


def _reset(sock: socket.socket) -> None:
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST


HOSTILE = {
    "one 200 MB SSE line": (
        lambda: _streaming_app(lambda: (b"data: " + b"x" * (1 << 20) for _ in range(200)), "text/event-stream"),
        "stopped reading|deadline",
    ),
    "invalid UTF-8 in events": (
        lambda: _streaming_app(lambda: iter([b"data: \xff\xfe\xfd\n\n", b"data: [DONE]\n\n"]), "text/event-stream"),
        None,
    ),
    "a gzip bomb": (
        lambda: _streaming_app(lambda: iter([_gzip_bomb()]), "application/json", {"Content-Encoding": "gzip"}),
        "stopped reading|deadline",
    ),
    "a 1 GB JSON body": (
        lambda: _streaming_app(lambda: (b"[" + b"0," * (1 << 19) for _ in range(1024)), "application/json"),
        "stopped reading|deadline",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_end_bounded_in_time_and_memory(name: str) -> None:
    import resource

    factory, marker = HOSTILE[name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with ServerThread(factory(), log_level="critical") as server:
        result, elapsed = _timed_run(server.url, phases=["realistic"])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.failures, name
    if marker:
        assert any(any(m in f.message for m in marker.split("|")) for f in result.failures), [
            f.message for f in result.failures
        ]
    assert elapsed < 60, elapsed
    assert grown_mb < 200, grown_mb  # the caps hold: nothing is read whole


@pytest.mark.parametrize(
    "respond, what",
    [(_short_body, "transport_ok"), (_reset, "transport_ok")],
    ids=["content-length-larger-than-the-body", "connection-reset"],
)
def test_broken_connections_are_transport_failures(respond: Any, what: str) -> None:
    with RawServer(respond) as server:
        result, elapsed = _timed_run(server.url, phases=["realistic"])
    assert what in {f.check for f in result.failures}
    assert elapsed < 60


def test_a_redirect_to_another_server_is_reported_not_followed() -> None:
    hits: list[str] = []

    async def anything(request: Request) -> Response:  # counts whatever reaches the other server
        hits.append(request.url.path)
        return Response("{}", media_type="application/json")

    elsewhere = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])

    async def redirect(request: Request) -> Response:
        return Response(status_code=307, headers={"Location": f"{other.url}/chat/completions"})

    with (
        ServerThread(elsewhere) as other,
        ServerThread(Starlette(routes=[Route("/chat/completions", redirect, methods=["POST"])])) as server,
    ):
        result, _ = _timed_run(server.url, phases=["realistic"])
    assert hits == []
    assert any("307" in f.message for f in result.failures_for("status_code_documented"))
