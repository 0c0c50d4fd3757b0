"""Servers that attack the checker's memory and its reports, for tests/test_hostile_contract_round3.py.

Each is a Starlette app to run in :class:`mockserver.serve.ServerThread` on a loopback port, except
:func:`gzip_bomb`, the bytes such a server sends.
"""

from __future__ import annotations

import base64
import functools
import zlib
from collections.abc import AsyncIterator
from typing import Any

from brokenservers import reference_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

GIB = 1024**3


@functools.cache
def gzip_bomb(size: int = GIB, layers: int = 2) -> bytes:
    """``size`` zero bytes gzipped ``layers`` times: 1 GiB twice gzipped is about 1 KB on the wire."""
    squeezer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    parts = [squeezer.compress(block) for _ in range(size // len(block))]
    data = b"".join(parts) + squeezer.flush()
    for _ in range(layers - 1):
        data = zlib.compress(data, 9, wbits=zlib.MAX_WBITS | 16)
    return data


def gzip_bomb_app(layers: int = 2) -> Starlette:
    """Answers every request, stream or not, with 1 GiB of zeros behind ``Content-Encoding: gzip, gzip``."""
    encoding = ", ".join(["gzip"] * layers)
    bomb = gzip_bomb(GIB, layers)  # built here, not while a request waits for it

    async def chat(request: Request) -> Response:
        body = await request.json()
        media = "text/event-stream" if body.get("stream") else "application/json"
        return Response(bomb, media_type=media, headers={"Content-Encoding": encoding})

    return Starlette(routes=[Route("/chat/completions", chat, methods=["POST"])])


def comment_flood_app(total: int = 50 * 1024 * 1024, line: bytes = b":\n") -> Starlette:
    """Streams ``total`` bytes of SSE comment lines and never an event: memory a checker must not keep."""
    piece = line * (64 * 1024 // len(line))

    async def chat(request: Request) -> Response:
        async def flood() -> AsyncIterator[bytes]:
            for _ in range(total // len(piece)):
                yield piece

        return StreamingResponse(flood(), media_type="text/event-stream")

    return Starlette(routes=[Route("/chat/completions", chat, methods=["POST"])])


class BasicAuthOnly:
    """Refuses with 401 every request without HTTP Basic ``user:password``; counts those let through."""

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.admitted = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        if headers.get(b"authorization", b"").decode("latin-1") != self.expected:
            self.refused += 1
            error: dict[str, Any] = {"message": "bad credentials", "type": "authentication_error", "param": None}
            await JSONResponse({"error": {**error, "code": None}}, status_code=401)(scope, receive, send)
            return
        self.admitted += 1
        await self.app(scope, receive, send)


def basic_auth_app(user: str, password: str, broken: str | None = "no_done") -> BasicAuthOnly:
    """The reference server (by default one that fails a check) behind HTTP Basic authentication."""
    return BasicAuthOnly(reference_app(broken), user, password)
