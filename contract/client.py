"""Send one request to a live server and read the answer as it arrives.

A server under test may be broken or hostile: it may never answer, stream
forever, trickle a byte a second, reset the connection or send bytes that are
not HTTP. The client records each of those in the :class:`Exchange` and never
raises, so one bad response cannot sink a run. Streams go through the strict
SSE parser chunk by chunk, so checks see events in order and an endless stream
is cut at a cap instead of being buffered whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from .compat.httpx import PoolTransport
from .core.exchange import NOT_JSON, Exchange, PreparedRequest, parse_json
from .core.http_errors import describe_transport_error, timeout_activity
from .core.sse import SSEComment, SSEEvent, SSEParser
from .decoding import decoded_pieces


@dataclass(frozen=True)
class Limits:
    """How much of a response the client reads before it stops and reports."""

    max_body_bytes: int = 4 * 1024 * 1024  # a JSON (non-stream) body
    max_stream_bytes: int = 16 * 1024 * 1024  # a whole event stream
    max_events: int = 20_000
    max_event_bytes: int = 1024 * 1024  # bytes read without an event or comment completing


@dataclass(frozen=True)
class Timeout:
    """``total`` is an overall deadline per request; ``connect`` bounds the TCP connect.

    A per-read timeout alone never fires for a server that trickles one byte a
    second, so the deadline is checked after every chunk as well.
    """

    total: float = 10.0
    connect: float | None = None

    def for_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.total, connect=self.connect if self.connect is not None else self.total)


class _Stop(Exception):
    """Internal: stop reading and record ``reason`` as the transport error."""


# -- a deadline under every socket operation ----------------------------------------------------
# httpx's timeouts bound each read, not a whole request: a server that trickles its status line a
# byte a second, or sends ``100 Continue`` forever, is never cut. So every socket operation of the
# checker's connections is given at most the time left until the request's deadline, which
# ``send`` sets for the thread that sends.

_deadline = threading.local()


def _time_left(timeout: float | None) -> float:
    deadline = getattr(_deadline, "at", None)
    if deadline is None:
        return timeout if timeout is not None else 3600.0
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """One connection of the checker. It also tells ``send`` which connection a request went out on,
    how many bytes came back on it, and which exchange it last answered (``answered``): a request that
    meets a dead connection which answered before was sent on a kept-alive one the server had closed."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self.answered: Exchange | None = None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        _deadline.stream = self
        data = self._inner.read(max_bytes, _time_left(timeout))
        _deadline.read_bytes = getattr(_deadline, "read_bytes", 0) + len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _deadline.stream = self
        self._inner.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _time_left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, _time_left(timeout), local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover
        return _DeadlineStream(self._inner.connect_unix_socket(path, _time_left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - used by retries, which the checker never asks
        self._inner.sleep(seconds)


def http_client(pool_size: int) -> httpx.Client:
    """The checker's HTTP client: no redirects followed, no proxy from the environment, and every socket
    operation held to the deadline of the request it serves."""
    # httpx's own transport takes no network backend, so ours runs over a pool built with one.
    pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=pool_size,
        max_keepalive_connections=pool_size,
        # Below every common server's keep-alive timeout (gunicorn's 2 s is the shortest), so a kept-alive
        # connection found closed was closed by the server for another reason (see send).
        keepalive_expiry=1.0,
        network_backend=_DeadlineBackend(),
    )
    return httpx.Client(transport=PoolTransport(pool), follow_redirects=False, trust_env=False)


# Transport errors that cost a timeout or a capped read each time: the runner does not
# shrink them (every step would cost as much again) and stops after a few in a row.
_COSTLY_MARKERS = ("timed out", "deadline", "exceeded", "grew past", "stayed open")


def is_costly(exchange: Exchange) -> bool:
    error = exchange.transport_error or ""
    return any(marker in error for marker in _COSTLY_MARKERS)


def send(
    client: httpx.Client,
    request: PreparedRequest,
    *,
    timeout: Timeout = Timeout(),
    limits: Limits = Limits(),
    terminator: str | None = "[DONE]",
) -> Exchange:
    """Send ``request`` and read the whole response within the limits; never raises for the server's faults.

    A request that finds its kept-alive connection closed before a byte of the answer came back is
    sent once more on a new connection: a server that closes a connection after answering, without
    ``Connection: close``, is to blame for the answer before, not for this request. The exchange
    returned is then the second one, with ``closed_after`` naming the answer the connection died after.
    """
    exchange, connection, read_nothing = _send_once(client, request, timeout, limits, terminator)
    previous = connection.answered if connection is not None else None
    if connection is not None and exchange.status is not None:
        connection.answered = exchange
    if previous is None or not read_nothing or exchange.status is not None or is_costly(exchange):
        return exchange
    with http_client(1) as fresh:
        again, _, _ = _send_once(fresh, request, timeout, limits, terminator)
    if again.status is None:
        return exchange  # it fails on a new connection too: the failure is this request's own
    again.closed_after = previous
    return again


def _send_once(
    client: httpx.Client, request: PreparedRequest, timeout: Timeout, limits: Limits, terminator: str | None
) -> tuple[Exchange, _DeadlineStream | None, bool]:
    """The exchange, the connection it went out on, and whether nothing at all came back on it."""
    exchange = Exchange(request=request)
    started = time.monotonic()
    deadline = started + timeout.total
    _deadline.at = deadline
    _deadline.stream = None
    _deadline.read_bytes = 0
    try:
        with client.stream(
            request.method, request.url, headers=request.headers, content=request.raw_body, timeout=timeout.for_httpx()
        ) as response:
            exchange.status = response.status_code
            exchange.headers = {name.lower(): value for name, value in response.headers.items()}
            exchange.content_type = response.headers.get("content-type", "")
            if exchange.is_stream:
                _read_stream(response, exchange, started, deadline, limits, terminator)
            else:
                _read_body(response, exchange, started, deadline, limits)
    except _Stop as stop:
        exchange.transport_error = str(stop)
    except httpx.TimeoutException as exc:
        exchange.transport_error = _timeout_message(exc, timeout, exchange, deadline)
    except httpx.HTTPError as exc:
        exchange.transport_error = describe_transport_error(exc)
    except OSError as exc:  # pragma: no cover - httpx wraps these; kept so a socket error never escapes
        exchange.transport_error = f"{type(exc).__name__}: {exc}"
    finally:
        _deadline.at = None
    exchange.timings.total_ms = _ms(started)
    connection: _DeadlineStream | None = getattr(_deadline, "stream", None)
    return exchange, connection, getattr(_deadline, "read_bytes", 0) == 0


def _read_body(response: httpx.Response, exchange: Exchange, started: float, deadline: float, limits: Limits) -> None:
    body = bytearray()
    for chunk in decoded_pieces(response, _check_deadline):
        if not chunk:
            continue
        if exchange.timings.ttfb_ms is None:
            exchange.timings.ttfb_ms = _ms(started)
        body.extend(chunk)
        if len(body) > limits.max_body_bytes:
            exchange.body = bytes(body[: limits.max_body_bytes])
            raise _Stop(f"the body exceeded {limits.max_body_bytes} bytes; stopped reading")
        if time.monotonic() > deadline:
            exchange.body = bytes(body)
            raise _Stop(f"the body was still arriving after the {_seconds(started, deadline)} s deadline")
    exchange.body = bytes(body)
    exchange.json = _parse_json(exchange.body)
    if exchange.json is not NOT_JSON and _has_output(exchange.json, "message"):
        exchange.timings.ttft_ms = exchange.timings.ttfb_ms


def _read_stream(
    response: httpx.Response,
    exchange: Exchange,
    started: float,
    deadline: float,
    limits: Limits,
    terminator: str | None,
) -> None:
    parser = SSEParser(terminator)
    since_last_item = 0
    try:
        for chunk in decoded_pieces(response, _check_deadline):
            if not chunk:
                continue
            if exchange.timings.ttfb_ms is None:
                exchange.timings.ttfb_ms = _ms(started)
            items = parser.feed(chunk)
            since_last_item = 0 if items else since_last_item + len(chunk)
            _collect(items, exchange, started)
            if parser.bytes_seen > limits.max_stream_bytes:
                raise _Stop(f"the stream exceeded {limits.max_stream_bytes} bytes; stopped reading")
            if len(exchange.events) + len(exchange.comments) > limits.max_events:
                # Comments count too: a server sending nothing but ``:`` lines must not fill memory with them.
                raise _Stop(f"the stream exceeded {limits.max_events} events and comments; stopped reading")
            if since_last_item > limits.max_event_bytes:
                raise _Stop(f"an event grew past {limits.max_event_bytes} bytes; stopped reading")
            if time.monotonic() > deadline:
                after = f" after {terminator}" if parser.done else ""
                raise _Stop(f"the stream was still open{after} at the {_seconds(started, deadline)} s deadline")
        _collect(parser.close(), exchange, started)
    except httpx.TimeoutException as exc:
        if parser.done:
            raise _Stop(f"the connection stayed open after {terminator} until the read timed out") from exc
        raise
    finally:
        exchange.sse_problems = list(parser.problems)


def _check_deadline() -> None:
    """Stop unpacking once the request's deadline has passed, though no socket read would notice."""
    deadline = getattr(_deadline, "at", None)
    if deadline is not None and time.monotonic() > deadline:
        raise _Stop("the body was still being unpacked at the request's deadline; stopped reading")


def _collect(items: list[SSEEvent | SSEComment], exchange: Exchange, started: float) -> None:
    arrived = _ms(started) if items else 0.0  # one clock read per network chunk, shared by its events
    for item in items:
        if isinstance(item, SSEComment):
            exchange.comments.append(item)
            continue
        exchange.events.append(item)
        exchange.event_ms.append(arrived)
        if exchange.timings.ttft_ms is None and _event_has_output(item):
            exchange.timings.ttft_ms = _ms(started)


def _event_has_output(event: SSEEvent) -> bool:
    if '"content"' not in event.data and '"tool_calls"' not in event.data and '"audio"' not in event.data:
        return False  # cheap pre-filter: most chunks are parsed by the checks anyway
    return _has_output(_parse_json(event.data.encode("utf-8")), "delta")


def _has_output(payload: Any, key: str) -> bool:
    """Does a response or chunk carry content, a tool call or audio in any choice?"""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        return False
    for choice in payload["choices"]:
        message = choice.get(key) if isinstance(choice, dict) else None
        if isinstance(message, dict) and (message.get("content") or message.get("tool_calls") or message.get("audio")):
            return True
    return False


def _parse_json(body: bytes) -> Any:
    return parse_json(body)


def _timeout_message(exc: httpx.TimeoutException, timeout: Timeout, exchange: Exchange, deadline: float) -> str:
    if "deadline" in str(exc) or time.monotonic() >= deadline - 0.05:  # the request's deadline, not one read
        if exchange.status is None:
            return f"timed out: no complete response head within the {timeout.total:g} s deadline"
        if exchange.is_stream:
            return f"the stream was still open at the {timeout.total:g} s deadline"
        return f"the body was still arriving after the {timeout.total:g} s deadline"
    doing = timeout_activity(exc)
    if exchange.status is not None and doing == "waiting for the response":
        doing = "reading the body"
    return f"timed out after {timeout.total:g} s {doing}"


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)


def _seconds(started: float, deadline: float) -> str:
    return f"{deadline - started:g}"
