"""Every internal the toolkit borrows from another library is still there, in the shape used, and still works.

One group per compatibility module (``contract/compat/``, ``mockserver/uvicorn_compat.py``). A
release that moves an internal fails here first, with the library, the internal and what to do,
instead of as a slower run, a seed that no longer reproduces or a server that logs noise.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import hypothesis
import hypothesis_jsonschema
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_helpers import LogRecords
from uvicorn.supervisors.multiprocess import SIGNALS, Process

from contract.compat import IncompatibleLibrary
from contract.compat import hypothesis as hypothesis_compat
from contract.compat import hypothesis_jsonschema as builder_compat
from contract.compat.httpx import HTTPCORE_TO_HTTPX, PoolTransport, httpx_errors
from contract.determinism import without_local_constants
from contract.strategies import reused_schema_strategies
from mockserver import protocol, serve, uvicorn_compat
from mockserver.protocol import mark_planned_drop
from mockserver.serve import ServerThread


def changed(library: str, version: str, internal: str, module: str) -> str:
    return (
        f"{library} {version} changed {internal}: adapt {module} to it (its docstring says what it relies on), "
        f"or keep {library} below this release in pyproject.toml"
    )


# -- Hypothesis: local constants (contract/compat/hypothesis.py) ----------------------------------------------

HYPOTHESIS = ("hypothesis", hypothesis.__version__)
PROBE = "zq-4711"  # shorter than the strings drawn


def _drawn_strings() -> list[str]:
    drawn: list[str] = []

    @settings(max_examples=50, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.text(max_size=12), min_size=40, max_size=40))
    def draw(texts: list[str]) -> None:
        drawn.extend(texts)

    draw()
    return drawn


def test_hypothesis_local_constants_have_the_shape_used() -> None:
    where = changed(
        *HYPOTHESIS, f"{hypothesis_compat.PROVIDERS}.{hypothesis_compat.LOCAL_CONSTANTS}", "contract.compat.hypothesis"
    )
    module = hypothesis_compat.providers()  # raises IncompatibleLibrary, naming the missing name
    source = hypothesis_compat.local_constants()
    assert callable(source) and not inspect.signature(source).parameters, where
    empty = hypothesis_compat.no_constants()()
    assert len(empty) == 0 and isinstance(source(), type(empty)), where
    cache = getattr(module, hypothesis_compat.CONSTANTS_CACHE)
    assert callable(getattr(getattr(cache, "cache", None), "clear", None)), changed(
        *HYPOTHESIS,
        f"{hypothesis_compat.PROVIDERS}.{hypothesis_compat.CONSTANTS_CACHE}.cache",
        "contract.compat.hypothesis",
    )


def test_hypothesis_draws_local_constants_only_outside_a_run() -> None:
    """Hypothesis draws the constants through the function replaced; within a run it draws none of them."""
    where = changed(*HYPOTHESIS, "how draws reach the local constants", "contract.compat.hypothesis")
    shipped = hypothesis_compat.local_constants()
    empty = hypothesis_compat.no_constants()()
    probe = type(empty)(strings={PROBE})
    hypothesis_compat.set_local_constants(lambda: probe)
    try:
        assert PROBE in _drawn_strings(), where
        with without_local_constants():
            assert PROBE not in _drawn_strings(), where
        assert PROBE in _drawn_strings(), where
    finally:
        hypothesis_compat.set_local_constants(shipped)
    assert hypothesis_compat.local_constants() is shipped


def test_a_run_refuses_to_draw_when_hypothesis_has_moved_its_local_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the switch the same seed would draw other requests under pytest: that is an error, not a shrug."""
    monkeypatch.delattr(hypothesis_compat.providers(), hypothesis_compat.LOCAL_CONSTANTS)
    with pytest.raises(IncompatibleLibrary, match=r"^hypothesis \S+ has no .*_get_local_constants.*pyproject\.toml"):
        with without_local_constants():
            pass  # pragma: no cover


# -- hypothesis-jsonschema: the per-schema builder (contract/compat/hypothesis_jsonschema.py) -------------------

JSONSCHEMA = ("hypothesis-jsonschema", hypothesis_jsonschema.__version__)
BUILDER = f"{builder_compat.BUILDER_MODULE}.{builder_compat.BUILDER}"


def test_hypothesis_jsonschema_builder_has_the_signature_used() -> None:
    where = changed(*JSONSCHEMA, BUILDER, "contract.compat.hypothesis_jsonschema")
    parameters = inspect.signature(builder_compat.schema_builder()).parameters
    assert list(parameters) == ["schema", "alphabet", "custom_formats"], where
    assert parameters["alphabet"].kind is parameters["custom_formats"].kind is inspect.Parameter.KEYWORD_ONLY, where


def test_hypothesis_jsonschema_builds_every_sub_schema_through_the_builder() -> None:
    """A wrapper set in the builder's place sees the schema and its sub-schemas, with an alphabet of the shape used."""
    where = changed(*JSONSCHEMA, BUILDER, "contract.compat.hypothesis_jsonschema")
    shipped = builder_compat.schema_builder()
    seen: list[tuple[Any, Any]] = []

    def recording(schema: Any, **options: Any) -> Any:
        seen.append((schema, builder_compat.alphabet_key(options["alphabet"])))
        return shipped(schema, **options)

    schema = {"type": "object", "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]}
    drawn: list[Any] = []
    builder_compat.set_schema_builder(recording)
    try:

        @settings(max_examples=3, derandomize=True, database=None, deadline=None)
        @given(hypothesis_jsonschema.from_schema(schema))  # builds the root schema's strategy at once
        def draw(value: Any) -> None:
            drawn.append(value)

        draw()
    finally:
        builder_compat.set_schema_builder(shipped)
    assert drawn and all(isinstance(value.get("city"), str) for value in drawn), where
    assert schema in [s for s, _ in seen] and {"type": "string", "minLength": 1} in [s for s, _ in seen], where
    assert {key for _, key in seen} == {(True, "utf-8")}, changed(
        *JSONSCHEMA, "the builder's alphabet (allow_x00, codec)", "contract.compat.hypothesis_jsonschema"
    )


def test_reuse_refuses_to_start_when_the_builder_has_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(builder_compat.builder_module(), builder_compat.BUILDER)
    with pytest.raises(IncompatibleLibrary, match=r"^hypothesis-jsonschema \S+ has no .*__from_schema"):
        with reused_schema_strategies():
            pass  # pragma: no cover


# -- httpx and httpcore: a transport over a pool of our own (contract/compat/httpx.py) ---------------------------

HTTPX = ("httpx", httpx.__version__)
HTTPCORE = ("httpcore", httpcore.__version__)


def test_every_httpcore_exception_is_raised_as_the_httpx_one_of_its_name() -> None:
    exported = [getattr(httpcore, name) for name in httpcore.__all__]
    errors = {cls for cls in exported if isinstance(cls, type) and issubclass(cls, Exception)}
    # ConnectionNotAvailable never leaves the pool, which retries on another connection; httpx maps it neither.
    unmapped = errors - set(HTTPCORE_TO_HTTPX)
    assert unmapped == {httpcore.ConnectionNotAvailable}, changed(*HTTPCORE, "its exceptions", "contract.compat.httpx")
    for core, ours in HTTPCORE_TO_HTTPX.items():
        assert getattr(httpx, core.__name__) is ours, changed(*HTTPX, f"httpx.{core.__name__}", "contract.compat.httpx")
        with pytest.raises(ours, match="^went wrong$") as raised:
            with httpx_errors():
                raise core("went wrong")
        assert type(raised.value) is ours and isinstance(raised.value.__cause__, core)


def test_httpcore_pool_and_backend_have_the_signatures_used() -> None:
    where = changed(
        *HTTPCORE, "ConnectionPool / NetworkBackend / NetworkStream", "contract.compat.httpx and contract.client"
    )
    pool = inspect.signature(httpcore.ConnectionPool).parameters
    for name in ("ssl_context", "max_connections", "max_keepalive_connections", "keepalive_expiry", "network_backend"):
        assert name in pool, where
    expected = {
        httpcore.NetworkBackend.connect_tcp: ["self", "host", "port", "timeout", "local_address", "socket_options"],
        httpcore.NetworkBackend.connect_unix_socket: ["self", "path", "timeout", "socket_options"],
        httpcore.NetworkBackend.sleep: ["self", "seconds"],
        httpcore.NetworkStream.read: ["self", "max_bytes", "timeout"],
        httpcore.NetworkStream.write: ["self", "buffer", "timeout"],
        httpcore.NetworkStream.close: ["self"],
        httpcore.NetworkStream.start_tls: ["self", "ssl_context", "server_hostname", "timeout"],
        httpcore.NetworkStream.get_extra_info: ["self", "info"],
    }
    for method, parameters in expected.items():
        assert list(inspect.signature(method).parameters) == parameters, f"{method.__qualname__}: {where}"


class _CountingBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()
        self.connects = 0

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        self.connects += 1
        return self.inner.connect_tcp(host, port, timeout, local_address, socket_options)


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-seen", scope["path"].encode())]})
    await send({"type": "http.response.body", "body": b"echo:" + body})


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with ServerThread(_echo) as server:
        yield server.url


def test_the_pool_transport_answers_as_httpx_own_transport_does(echo_url: str) -> None:
    where = changed(*HTTPX, "what a transport hands to and gets from httpcore", "contract.compat.httpx")
    backend = _CountingBackend()
    pool = httpcore.ConnectionPool(max_connections=1, network_backend=backend)
    answers = []
    for transport in (httpx.HTTPTransport(), PoolTransport(pool)):
        with httpx.Client(transport=transport) as client:
            response = client.post(f"{echo_url}/a?b=c", content=b"hello")
            answers.append((response.status_code, response.headers["x-seen"], response.content, response.http_version))
    assert answers[0] == answers[1] == (201, "/a", b"echo:hello", "HTTP/1.1"), where
    assert backend.connects == 1, where  # the pool given is the one that connects, through its own backend


def test_the_pool_transport_raises_what_httpx_raises() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    for transport in (httpx.HTTPTransport(), PoolTransport(httpcore.ConnectionPool())):
        with httpx.Client(transport=transport) as client:
            with pytest.raises(httpx.ConnectError) as refused:
                client.get(closed)
            assert str(refused.value.request.url).rstrip("/") == closed
            with pytest.raises(httpx.UnsupportedProtocol):
                client.get("ftp://127.0.0.1/")


# -- uvicorn: the protocols and the supervisor (mockserver/uvicorn_compat.py) -------------------------------

UVICORN = ("uvicorn", uvicorn.__version__)


def _protocols() -> list[type]:
    found: list[type] = [uvicorn_compat.H11Protocol]
    if uvicorn_compat.HttpToolsProtocol is not None:
        found.append(uvicorn_compat.HttpToolsProtocol)
    return found


def test_httptools_protocol_is_there_when_httptools_is() -> None:
    pytest.importorskip("httptools")
    assert uvicorn_compat.HttpToolsProtocol is not None, changed(
        *UVICORN, "uvicorn.protocols.http.httptools_impl.HttpToolsProtocol", "mockserver.uvicorn_compat"
    )


@pytest.mark.parametrize("base", _protocols(), ids=lambda cls: cls.__name__)
def test_uvicorn_protocols_have_the_hooks_used(base: type) -> None:
    where = changed(*UVICORN, f"{base.__name__}'s hooks", "mockserver.uvicorn_compat and mockserver.protocol")
    assert issubclass(base, asyncio.Protocol), where
    expected = {
        "connection_made": ["self", "transport"],
        "data_received": ["self", "data"],
        "on_response_complete": ["self"],
        "connection_lost": ["self", "exc"],
    }
    assert set(expected) == set(uvicorn_compat.PROTOCOL_HOOKS)
    for hook, parameters in expected.items():
        assert list(inspect.signature(getattr(base, hook)).parameters)[: len(parameters)] == parameters, where


def _head_deadline_protocols() -> list[type]:
    found: list[type] = [protocol.H11HeadDeadlineProtocol]
    if uvicorn_compat.HttpToolsProtocol is not None:
        found.append(protocol.HttpToolsHeadDeadlineProtocol)
    return found


@pytest.mark.parametrize("guarded", _head_deadline_protocols(), ids=lambda cls: cls.__name__)
def test_uvicorn_protocols_carry_the_state_read(monkeypatch: pytest.MonkeyPatch, guarded: type) -> None:
    """What the head deadline reads of a live connection, and of each request's cycle, is there."""
    where = changed(*UVICORN, f"{guarded.__name__}'s attributes", "mockserver.uvicorn_compat and mockserver.protocol")
    seen: list[dict[str, Any]] = []

    class Probe(guarded):
        def on_response_complete(self) -> None:
            seen.append(
                {
                    **{name: hasattr(self, name) for name in uvicorn_compat.PROTOCOL_ATTRIBUTES},
                    **{name: getattr(self.cycle, name, None) for name in uvicorn_compat.CYCLE_ATTRIBUTES},
                }
            )
            super().on_response_complete()

    monkeypatch.setattr(serve, "HeadDeadlineProtocol", Probe)
    with ServerThread(_echo) as server:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/probe").status_code == 201
    assert seen and all(seen[0][name] for name in uvicorn_compat.PROTOCOL_ATTRIBUTES), where
    assert seen[0]["response_complete"] is True and seen[0]["scope"]["path"] == "/probe", where


async def _cut(scope: Any, receive: Any, send: Any) -> None:
    """Start a response and end without its last body message; on ``/planned`` as a fault would."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/planned":
        mark_planned_drop(scope, "disconnect")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})


def test_uvicorn_logs_an_incomplete_response_in_the_words_matched() -> None:
    """uvicorn says :data:`INCOMPLETE_RESPONSE` at ERROR through the protocol's logger; a planned cut is DEBUG."""
    where = changed(*UVICORN, "its message for an incomplete response", "mockserver.uvicorn_compat")
    records = LogRecords()
    uvicorn_log = logging.getLogger("uvicorn.error")
    with ServerThread(_cut, log_level="debug") as server:
        uvicorn_log.addHandler(records)
        try:
            for path in ("/unplanned", "/planned"):
                with pytest.raises(httpx.TransportError):
                    httpx.get(f"{server.url}{path}", timeout=5).read()
            time.sleep(0.2)
        finally:
            uvicorn_log.removeHandler(records)
    errors = [r.getMessage() for r in records.records if r.levelno >= logging.ERROR]
    assert errors == [uvicorn_compat.INCOMPLETE_RESPONSE], where
    planned = [r for r in records.records if "cut on purpose" in r.getMessage()]
    assert len(planned) == 1 and planned[0].levelno == logging.DEBUG, where


def test_uvicorn_supervisor_has_the_shape_used() -> None:
    """``mockserver --workers`` reads each worker's exit code after the supervisor stops; the stop itself
    is run in tests/test_hostile_mock_round3.py (a worker that cannot start stops them all, exit 2)."""
    where = changed(*UVICORN, "uvicorn.supervisors.Multiprocess", "mockserver.uvicorn_compat and mockserver.workers")
    parameters = inspect.signature(uvicorn_compat.Multiprocess).parameters
    assert list(parameters) == ["config", "sockets"], where
    handlers = {number: signal.getsignal(number) for number in SIGNALS}  # the supervisor takes these over
    try:
        supervisor = uvicorn_compat.Multiprocess(uvicorn.Config(_echo, workers=2), sockets=[])
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert supervisor.processes == [] and callable(supervisor.run), where
    assert isinstance(inspect.getattr_static(Process, "exitcode"), property), where
    assert isinstance(uvicorn_compat.STARTUP_FAILURE, int), where
