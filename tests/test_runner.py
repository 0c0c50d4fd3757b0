"""The streaming client and the runner's plumbing, against real loopback servers."""

from __future__ import annotations

import asyncio
import json
import socketserver
import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from brokenservers import reference_app
from mock_helpers import MockServers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from contract.client import Limits, Timeout, is_costly, send
from contract.core.exchange import NOT_JSON, PreparedRequest
from contract.core.spec import load_spec
from contract.headers import parse_header
from contract.runner import UsageError, checks_to_run, counterpart_of, operation_url, run
from mockserver.serve import ServerThread


def _request(url: str, body: object = None) -> PreparedRequest:
    body = body if body is not None else {"messages": [{"role": "user", "content": "hi"}]}
    return PreparedRequest(
        "POST", url + "/chat/completions", {"Content-Type": "application/json"}, body, json.dumps(body).encode()
    )


def _app(handler) -> Starlette:
    return Starlette(routes=[Route("/chat/completions", handler, methods=["POST"])])


def _sse(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream")


def _chunk(content: str) -> bytes:
    data = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return f"data: {json.dumps(data)}\n\n".encode()


def test_a_stream_is_read_event_by_event_with_ttft_before_the_end() -> None:
    async def paced(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b": warming up\n\n"
            await asyncio.sleep(0.2)
            yield _chunk("Hel")
            await asyncio.sleep(0.3)
            yield _chunk("lo") + b"data: [DONE]\n\n"

        return _sse(body())

    with ServerThread(_app(paced)) as server, httpx.Client() as client:
        exchange = send(client, _request(server.url), timeout=Timeout(5))
    assert exchange.transport_error is None and exchange.status == 200 and exchange.is_stream
    assert [e.data for e in exchange.events][-1] == "[DONE]" and len(exchange.events) == 3
    assert [c.text for c in exchange.comments] == ["warming up"]
    timings = exchange.timings
    assert timings.ttfb_ms < 150  # the comment arrives at once
    assert 150 < timings.ttft_ms < 450  # the first content, not the first byte
    assert timings.total_ms - timings.ttft_ms > 200


def test_a_trickling_server_is_cut_at_the_overall_deadline() -> None:
    async def trickle(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            while True:
                yield b":"
                await asyncio.sleep(0.2)  # never silent long enough for a per-read timeout

        return _sse(body())

    with ServerThread(_app(trickle), log_level="critical") as server, httpx.Client() as client:
        started = time.monotonic()
        exchange = send(client, _request(server.url), timeout=Timeout(1.0))
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 1.6
    assert "deadline" in exchange.transport_error and is_costly(exchange)


def test_an_oversized_event_and_body_are_capped() -> None:
    async def huge(request: Request) -> Response:
        body = await request.json()
        if body.get("stream") is False:
            return Response(b'{"x": "' + b"a" * 50_000 + b'"}', media_type="application/json")

        async def events() -> AsyncIterator[bytes]:
            yield b"data: " + b"a" * 50_000
            await asyncio.sleep(10)

        return _sse(events())

    limits = Limits(max_body_bytes=10_000, max_event_bytes=10_000)
    with ServerThread(_app(huge), log_level="critical") as server, httpx.Client() as client:
        started = time.monotonic()
        stream = send(client, _request(server.url), timeout=Timeout(5), limits=limits)
        whole = send(client, _request(server.url, {"messages": [], "stream": False}), timeout=Timeout(5), limits=limits)
    assert time.monotonic() - started < 2
    assert "grew past 10000 bytes" in stream.transport_error
    assert "exceeded 10000 bytes" in whole.transport_error and len(whole.body) == 10_000


def test_invalid_utf8_is_a_framing_problem_not_a_crash() -> None:
    async def bad(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"data: caf\xe9\n\n"
            yield b"data: [DONE]\n\n"

        return _sse(body())

    with ServerThread(_app(bad)) as server, httpx.Client() as client:
        exchange = send(client, _request(server.url), timeout=Timeout(5))
    assert exchange.transport_error is None
    assert [p.kind for p in exchange.sse_problems] == ["invalid_utf8"]


def test_a_connection_closed_mid_body_is_recorded() -> None:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(
                b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id": "x"'
            )

    server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with httpx.Client() as client:
            exchange = send(client, _request(url), timeout=Timeout(2))
    finally:
        server.shutdown()
        server.server_close()
    assert exchange.status == 200 and exchange.json is NOT_JSON
    assert exchange.transport_error.startswith("not valid HTTP") and not is_costly(exchange)


def test_operation_url_joins_both_base_forms() -> None:
    operation = load_spec().operation()
    assert operation_url("http://127.0.0.1:8000", operation) == "http://127.0.0.1:8000/chat/completions"
    assert operation_url("http://127.0.0.1:8000/v1/", operation) == "http://127.0.0.1:8000/v1/chat/completions"


@pytest.mark.parametrize(
    "url, message",
    [
        ("127.0.0.1:8000", "must start with http"),
        ("http://", "has no host"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://127.0.0.1:8000/v1?x=1", "without query"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(url)


def test_headers_and_check_selection() -> None:
    assert parse_header("X-Api-Key:  abc def ") == ("X-Api-Key", "abc def")
    with pytest.raises(UsageError):
        parse_header("Bad Name: value")
    defaults = checks_to_run(None, None)
    assert "valid_request_accepted" not in defaults and "chunks_valid" in defaults
    assert "valid_request_accepted" in checks_to_run(None, None, accept_valid=True)
    assert checks_to_run(["role_first", "chunks_valid"], ["chunks_valid"]) == ["role_first"]
    with pytest.raises(UsageError, match="unknown check 'nope'"):
        checks_to_run(["nope"], None)


def test_the_counterpart_flips_stream_with_absent_meaning_true() -> None:
    absent = counterpart_of(_request("http://h"))
    assert absent.body["stream"] is False
    assert counterpart_of(_request("http://h", {"messages": [], "stream": False})).body["stream"] is True
    assert json.loads(absent.raw_body) == absent.body


def test_progress_reports_each_phase_start_and_end() -> None:
    seen: list[tuple[str, bool, int]] = []
    with ServerThread(reference_app()) as server:
        run(
            server.url,
            max_examples=3,
            seed=1,
            timeout=2,
            phases=["realistic", "negative"],
            progress=lambda phase, finished: seen.append((phase.name, finished, phase.requests)),
        )
    assert [(name, finished) for name, finished, _ in seen] == [
        ("realistic", False),
        ("realistic", True),
        ("negative", False),
        ("negative", True),
    ]
    assert all(count >= 3 for _, finished, count in seen if finished)


def _document_with(tmp_path, change) -> object:
    """A copy of openapi.yaml with one change, loaded."""
    import yaml
    from conftest import ROOT

    document = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return load_spec(path)


def test_the_counterpart_follows_the_documents_stream_default(tmp_path) -> None:
    from contract.checks import CheckContext, stream_default

    def stream_off(document):
        document["components"]["schemas"]["ChatCompletionRequest"]["properties"]["stream"]["default"] = False

    assert stream_default(CheckContext.for_spec(load_spec())) is True
    assert stream_default(CheckContext.for_spec(_document_with(tmp_path, stream_off))) is False
    assert counterpart_of(_request("http://h"), stream_default=False).body["stream"] is True


def test_the_documents_stream_terminator_reaches_the_client(tmp_path) -> None:
    """With ``x-sse-terminator: "[END]"`` a server that ends with ``[DONE]`` has not terminated its stream."""

    def end_marker(document):
        document["paths"]["/chat/completions"]["post"]["responses"]["200"]["content"]["text/event-stream"][
            "x-sse-terminator"
        ] = "[END]"

    with ServerThread(reference_app()) as server:
        result = run(
            server.url,
            spec=_document_with(tmp_path, end_marker),
            max_examples=2,
            seed=1,
            timeout=2,
            phases=["coverage"],
        )
    [record] = result.failures_for("stream_terminated")
    assert "without data: [END]" in record.message


def test_every_default_check_judges_the_mock_with_few_examples(mock_server_factory: MockServers) -> None:
    """The coverage phase alone gives every check something to judge, whatever the seed."""
    with mock_server_factory(None, no_delay=True) as server:
        result = run(server.url, max_examples=3, seed=4, timeout=5)
    assert result.ok, (result.diagnosis, [(f.check, f.message) for f in result.failures])
    assert {name: stats.judged for name, stats in result.stats.items() if stats.judged < 3} == {}


def test_the_help_names_only_checks_that_exist() -> None:
    import re

    from contract.checks import CHECKS
    from contract.cli import build_parser

    named = set(re.findall(r"\(check\s+([a-z_]+)\)", build_parser().format_help()))
    assert named and named <= set(CHECKS), named - set(CHECKS)
