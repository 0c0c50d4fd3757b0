"""Run an ASGI app with uvicorn in a background thread on a loopback port.

The pytest plugin and the tests need a real server on a real port that starts
and stops inside one process; this is the one place that knows how.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from .protocol import MAX_HEAD_BYTES, HeadDeadlineProtocol


def protocol_options() -> dict[str, Any]:
    """The ``uvicorn.Config`` keywords of every mock server: the guarded protocol, and h11's own bound on a
    head set to the same size, so both parsers refuse the same heads.

    Forwarded headers are not trusted: no proxy stands in front of a local mock, and uvicorn's
    middleware that would rewrite the client's address and scheme from ``X-Forwarded-*`` parsed
    addresses on every request for nothing (a tenth of a request's cost on the JSON path)."""
    return {"http": HeadDeadlineProtocol, "h11_max_incomplete_event_size": MAX_HEAD_BYTES, "proxy_headers": False}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerThread:
    """A uvicorn server on ``host:port`` in a daemon thread; use as a context manager."""

    app: Any
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "warning"
    _server: uvicorn.Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        if not self.port:
            self.port = free_port(self.host)
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level=self.log_level,
            **protocol_options(),
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
