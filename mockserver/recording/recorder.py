"""The recording proxy: forward each request to a live server, stream its answer back, write the fixture.

Clients talk to the proxy as to the real server. The upstream's bytes go back
to the client as they arrive, so the client sees the upstream's own pacing,
while a copy goes through the strict SSE parser with each event's arrival time.
When the answer is complete the exchange is written into the fixture folder
(:mod:`mockserver.recording.writer`, in a worker thread) and the client's end
(the ``[DONE]`` event, or the last byte of a JSON body) waits for the file
for at most :data:`WRITE_WAIT`, so a client that has its whole answer can
load the folder at once, and a long file does not hold it up. What the proxy
keeps of a reply, and unpacks of a compressed one, is bounded; beyond the
bound the reply is relayed and not recorded. ``mockserver --upstream URL
--record-missing`` uses the same :class:`Recorder` for requests no fixture answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.core.http_errors import describe_transport_error
from contract.core.profiles import Profile
from contract.core.redaction import Redactor, secret_values
from contract.core.spec import load_spec
from contract.core.sse import SSEEvent, SSEParser
from contract.core.validate import ContractValidator

from ..faults import DISCONNECT, Disconnect, error_body
from ..fixtures import Fixture
from ..local_guard import LocalOnly
from ..state import OnUnmatched
from ..wire import WireResponse, until_disconnect
from .capture import MAX_RECORDED_BYTES, Capture, NotRecordable, recorded_turn
from .upstream import HOP_BY_HOP, NOT_FORWARDED, BoundedDecoder, UnpackError, Upstream
from .writer import ConversationStore, NotWritten, Written

logger = logging.getLogger("mockserver.record")

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=60.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
WRITE_WAIT = 1.0  # seconds the end of a reply waits for its file; longer writes finish after it
# Not returned: the proxy sends the body decoded and with its own framing, and uvicorn adds Date and Server.
_RESPONSE_DROPPED = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}


class Recorder:
    """Forwards requests to the upstream and writes what comes back into a :class:`ConversationStore`."""

    def __init__(
        self,
        upstream: Upstream,
        store: ConversationStore,
        on_written: Callable[[Fixture], Any] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        self.upstream = upstream
        self.store = store
        self.on_written = on_written
        self.timeout = timeout
        self.limits = limits
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Finish the files still being written, then close the connections to the upstream."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def forward(self, request: Request, raw: bytes) -> Response:
        """The upstream's answer to ``raw`` (the request body), relayed as it arrives, and recorded.

        A client that leaves before the answer is ready takes the upstream request with it: left
        waiting, such requests would hold the connection pool until its requests for others time out.
        """
        answering = asyncio.ensure_future(self._answer(request, raw))
        leaving = asyncio.ensure_future(until_disconnect(request.receive))
        try:
            await asyncio.wait((answering, leaving), return_when=asyncio.FIRST_COMPLETED)
        finally:
            leaving.cancel()
            if not answering.done():
                answering.cancel()
            await asyncio.gather(answering, leaving, return_exceptions=True)
        if answering.cancelled():
            logger.info("the client left before the upstream answered; the upstream request was cancelled")
            return Response(status_code=499)  # nobody is there to read it
        return answering.result()

    async def _answer(self, request: Request, raw: bytes) -> Response:
        headers = self._outgoing_headers(request.headers.items())
        secrets = secret_values(headers)
        body = _request_body(raw)
        url = httpx.URL(self.upstream.endpoint)
        if request.url.query:
            url = url.copy_merge_params(request.query_params)
        client = self._client_for_this_loop()
        started = time.monotonic()
        try:
            response = await client.send(client.build_request("POST", url, headers=headers, content=raw), stream=True)
        except httpx.HTTPError as exc:
            message = f"the upstream {self.upstream.display} did not answer: {describe_transport_error(exc)}"
            logger.warning("%s; nothing recorded", Redactor(secrets).text(message))
            return JSONResponse(error_body(503, message, "upstream_unavailable"), 503)
        decoder = BoundedDecoder.for_encoding(response.headers.get("content-encoding", ""))
        relayed = _relayed_headers(response.headers, keep_encoding=decoder is None)
        capture = Capture(body or {}, response.status_code, _lowered(response.headers))
        if decoder is None:
            encoding = response.headers["content-encoding"]
            logger.warning("not recorded: the reply is %r-encoded, which the proxy relays as it is", encoding[:40])
            capture.give_up()
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if response.status_code == 200 and media == "text/event-stream":
            capture.stream = True
            return WireResponse(self._relay(response, decoder, capture, started, secrets), 200, headers=relayed)
        return await self._relay_body(response, decoder, capture, relayed, secrets)

    async def _relay_body(
        self,
        response: httpx.Response,
        decoder: BoundedDecoder | None,
        capture: Capture,
        relayed: dict[str, str],
        secrets: tuple[str, ...],
    ) -> Response:
        """A JSON (or error) body: kept whole and recorded when within the limit, else relayed as it comes."""
        pieces: list[bytes] = []
        size = 0
        body = _pieces(response, decoder)
        handed_on = False
        try:
            async for piece in body:
                pieces.append(piece)
                size += len(piece)
                if size > MAX_RECORDED_BYTES:
                    logger.warning("not recorded: %s", _too_large())
                    handed_on = True
                    return WireResponse(_rest(pieces, body, response), response.status_code, headers=relayed)
        except (httpx.HTTPError, UnpackError):
            capture.dropped = True
        finally:
            if not handed_on:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
        capture.body = b"".join(pieces)
        await self._record_before_the_end(capture, secrets)
        if capture.dropped:
            return WireResponse(_replay([*pieces, DISCONNECT]), status_code=response.status_code, headers=relayed)
        return Response(capture.body, status_code=response.status_code, headers=relayed)

    async def _relay(
        self,
        response: httpx.Response,
        decoder: BoundedDecoder | None,
        capture: Capture,
        started: float,
        secrets: tuple[str, ...],
    ) -> AsyncIterator[bytes | Disconnect]:
        """Yield each piece as it arrives; record once the stream is complete (not if the client leaves first).

        The fixture is written as soon as ``[DONE]`` arrives; the piece that carries it waits for the
        file for at most :data:`WRITE_WAIT` seconds, so a client that has seen ``[DONE]`` (SDKs stop
        reading there) finds a file of usual size, and a long one does not hold its client up.
        """
        parser = SSEParser()
        recorded = False
        try:
            try:
                async for piece in _pieces(response, decoder):
                    at = time.monotonic() - started
                    if not capture.too_large:
                        for item in parser.feed(piece):
                            if isinstance(item, SSEEvent):
                                capture.keep(at, item)
                        if capture.too_large:
                            logger.warning("not recorded: %s", _too_large())
                    if parser.done and not recorded:
                        capture.done = recorded = True
                        await self._record_before_the_end(capture, secrets)
                    yield piece
            except (httpx.HTTPError, UnpackError) as exc:
                capture.dropped = True
                logger.info("the upstream dropped the stream: %s", describe_transport_error(exc))
            else:
                if not capture.too_large:
                    for item in parser.close():
                        if isinstance(item, SSEEvent):
                            capture.keep(time.monotonic() - started, item)
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
        if not recorded:
            capture.done = parser.done
            await self._record_before_the_end(capture, secrets)
        if capture.dropped:
            yield DISCONNECT

    async def _record_before_the_end(self, capture: Capture, secrets: tuple[str, ...]) -> None:
        """Start writing the exchange, and wait for the file at most :data:`WRITE_WAIT` seconds.

        The write goes on in its own task whatever happens to the client's response, so a client
        that leaves, or a long file, neither loses the recording nor holds up the reply.
        """
        if capture.too_large:
            return  # relayed, not recorded; the log said so when it passed the limit
        task = asyncio.ensure_future(self._record(capture, secrets))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        await asyncio.wait((task,), timeout=WRITE_WAIT)

    async def _record(self, capture: Capture, secrets: tuple[str, ...]) -> None:
        """Write the exchange (in a worker thread; only writes to one file wait for each other); log why when not."""
        redactor = Redactor(secrets)
        if not capture.request:
            logger.warning("not recorded: the request body is not a JSON object with a list of messages")
            return
        try:
            written = await asyncio.to_thread(self._write, capture, secrets)
        except (NotRecordable, NotWritten) as exc:
            logger.warning("not recorded: %s", redactor.text(str(exc)))
            return
        except OSError as exc:
            logger.error("cannot write the recorded fixture into %s: %s", self.store.folder, exc.strerror or exc)
            return
        except Exception:  # a recording bug must not cost the client the answer it is being relayed
            logger.exception("not recorded: unexpected error")
            return
        logger.info("recorded %s (%s, message %d)", written.path, written.action, written.turn_index + 1)
        if self.on_written is not None:
            try:
                self.on_written(written.fixture)
            except Exception:  # the file is written; serving it at once is a convenience that must not break a reply
                logger.exception("recorded %s but could not serve it at once", written.path)

    def _write(self, capture: Capture, secrets: tuple[str, ...]) -> Written:
        return self.store.record(capture.request, recorded_turn(capture), secrets)

    def _outgoing_headers(self, incoming: Sequence[tuple[str, str]] | Any) -> list[tuple[str, str]]:
        """The client's headers minus hop-by-hop ones, with the upstream's own headers in place of theirs."""
        items = list(incoming)
        listed = {
            option.strip().lower()
            for name, value in items
            if name.lower() == "connection"
            for option in value.split(",")
        }  # Connection names more hop-by-hop headers
        replaced = {name.lower() for name, _ in self.upstream.headers}
        kept = [
            (name, value)
            for name, value in items
            if name.lower() not in NOT_FORWARDED and name.lower() not in listed and name.lower() not in replaced
        ]
        return [*kept, *self.upstream.headers, ("Accept-Encoding", "identity")]

    def _client_for_this_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=self.limits, follow_redirects=False)
            self._loop = loop
        return self._client


# -- the proxy app and the --record-missing attachment --------------------------------------------


def create_recorder_app(
    upstream: Upstream,
    fixtures_dir: Path | str,
    *,
    spec_path: Path | str | None = None,
    profile: Profile | str | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    allowed_hosts: Sequence[str] = (),
) -> Starlette:
    """A server with the mock's routes that forwards every request to ``upstream`` and records it.

    ``profile`` is the dialect the recorded files are checked against, as the replaying mock will be.
    A request from another web origin or naming a foreign Host is refused before anything goes
    upstream (``local_guard``): the upstream request would carry the user's key.
    """
    validator = ContractValidator(load_spec(spec_path, profile))
    store = ConversationStore(fixtures_dir, validator, upstream.display)
    recorder = Recorder(upstream, store, timeout=timeout)

    async def chat_completions(request: Request) -> Response:
        try:
            return await recorder.forward(request, await request.body())
        except Exception:
            logger.exception("unexpected error while forwarding %s %s", request.method, request.url.path)
            return JSONResponse(error_body(500, "the recorder failed unexpectedly; see its log", "internal_error"), 500)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "upstream": upstream.display, "recorded": store.count})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await recorder.aclose()

    routes = [
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception},
        middleware=[Middleware(LocalOnly, allowed_hosts=allowed_hosts)],
    )
    app.state.recorder = recorder
    return app


def record_missing(
    upstream: Upstream, fixtures_dir: Path | str, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> OnUnmatched:
    """``create_app(..., on_unmatched=record_missing(upstream, folder))``: the requests no fixture matches go to
    ``upstream``, are recorded into ``fixtures_dir`` (checked against the mock's own contract), and are
    replayed from then on."""

    def recorder(validator: ContractValidator, serve: Callable[[Fixture], object]) -> Recorder:
        store = ConversationStore(fixtures_dir, validator, upstream.display)
        return Recorder(upstream, store, on_written=serve, timeout=timeout)

    return recorder


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = (
        f"no route {request.method} {request.url.path}; the recorder forwards POST /chat/completions "
        "and /v1/chat/completions"
    )
    code = "method_not_allowed" if exc.status_code == 405 else "unknown_path"
    return JSONResponse(error_body(exc.status_code, message, code), exc.status_code, headers=exc.headers)


# -- helpers --------------------------------------------------------------------------------------


async def _replay(pieces: list[bytes | Disconnect]) -> AsyncIterator[bytes | Disconnect]:
    for piece in pieces:
        yield piece


def _request_body(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) and isinstance(body.get("messages"), list) else None


def _relayed_headers(headers: httpx.Headers, keep_encoding: bool = False) -> dict[str, str]:
    """The upstream's response headers, less those that describe its connection and framing.

    ``keep_encoding``: the body goes on as it came, in an encoding the proxy does not unpack.
    """
    dropped = _RESPONSE_DROPPED - {"content-encoding"} if keep_encoding else _RESPONSE_DROPPED
    return {name: value for name, value in headers.multi_items() if name.lower() not in dropped}


async def _pieces(response: httpx.Response, decoder: BoundedDecoder | None) -> AsyncIterator[bytes]:
    """The body as the client gets it: unpacked in bounded steps, giving other tasks a turn after each.

    ``decoder`` None: the raw bytes, still encoded.
    """
    async for raw in response.aiter_raw():
        if decoder is None:
            yield raw
            continue
        for piece in decoder.decode(raw):
            yield piece
            await asyncio.sleep(0)


async def _rest(
    kept: list[bytes], body: AsyncIterator[bytes], response: httpx.Response
) -> AsyncIterator[bytes | Disconnect]:
    """What was read of a body too large to record, then the rest of it as it arrives."""
    try:
        for piece in kept:
            yield piece
        kept.clear()
        try:
            async for piece in body:
                yield piece
        except (httpx.HTTPError, UnpackError):
            yield DISCONNECT
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


def _too_large() -> str:
    return (
        f"the upstream's reply is larger than the recording limit of {MAX_RECORDED_BYTES // 2**20} MB; relayed in full"
    )


def _lowered(headers: httpx.Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
