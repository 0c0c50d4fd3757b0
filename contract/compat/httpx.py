"""An httpx transport over an httpcore connection pool the caller builds.

Checked against httpx 0.29.0 and httpcore 1.0.9. ``httpx.HTTPTransport`` builds its own
``httpcore.ConnectionPool`` and takes no network backend, and the checker needs one (each socket
operation held to its request's deadline). So this transport is what ``HTTPTransport`` is without
a proxy, over a pool of the caller's: httpx's request handed to httpcore as it is, httpcore's
response handed back, and httpcore's exceptions raised as the httpx exceptions of the same name,
the most specific one, as httpx does (``httpx/_transports/default.py``). Only public names of
both libraries are used; what is borrowed is the correspondence between them, which
``tests/test_borrowed_internals.py`` checks against every exception httpcore exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

# httpcore's exceptions and the httpx ones a caller of httpx expects for them, most general first.
HTTPCORE_TO_HTTPX: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextmanager
def httpx_errors() -> Iterator[None]:
    """Raise each httpcore exception as the most specific httpx exception for it, with its message."""
    try:
        yield
    except Exception as exc:
        mapped: type[httpx.TransportError] | None = None
        for core, ours in HTTPCORE_TO_HTTPX.items():
            if isinstance(exc, core) and (mapped is None or issubclass(ours, mapped)):
                mapped = ours
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _ResponseBody(httpx.SyncByteStream):
    """httpcore's response body, read with its errors raised as httpx's."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PoolTransport(httpx.BaseTransport):
    """``httpx.HTTPTransport`` without a proxy, over ``pool``; closing the transport closes the pool."""

    def __init__(self, pool: httpcore.ConnectionPool) -> None:
        self.pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with httpx_errors():
            answer = self.pool.handle_request(sent)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_ResponseBody(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        with httpx_errors():
            self.pool.close()
