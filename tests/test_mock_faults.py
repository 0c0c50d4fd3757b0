"""Every fault, observed on the wire with raw httpx reads, and the seeded fault rate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import MockServers, RunningMock, ask, read_stream, write_conversations

from mockserver.faults import FaultPlan, parse_fault, parse_fault_header

URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    return module_mock_server_factory(write_conversations(tmp_path_factory.mktemp("conversations")), no_delay=True)


@pytest.fixture()
def client(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def faulty(client: httpx.Client, fault: str, content: str = "Say hello.", **extra: Any) -> Any:
    return read_stream(client, URL, ask(content, **extra), headers={"X-Mock-Fault": fault})


def test_fault_specs_parse_or_say_why() -> None:
    assert parse_fault({"type": "stall", "after_chunks": 2, "stall_ms": 50}) == FaultPlan(
        "stall", after_chunks=2, stall_ms=50
    )
    assert parse_fault_header("disconnect; after_chunks=3") == FaultPlan("disconnect", after_chunks=3)
    for bad, words in [
        ({"type": "explode"}, "not one of"),
        ({"type": "stall", "after": 1}, "unknown key 'after'"),
        ({"type": "disconnect", "after_chunks": "3"}, "whole number"),
        ({"type": "http_error", "status": 302}, "documented error status"),
        ("stall", "mapping"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_fault(bad)


def test_counts_and_millisecond_waits_parse_or_say_why() -> None:
    assert parse_fault_header("http_error; status=503; retry_after_ms=20; times=2") == FaultPlan(
        "http_error", status=503, retry_after_ms=20, times=2
    )
    assert parse_fault({"type": "no_done", "times": 1}).describe() == "no_done; times=1"
    assert parse_fault({"type": "http_error", "status": 429}).describe() == "http_error; status=429"
    for bad, words in [
        ({"type": "stall", "times": 0}, "times must be at least 1"),
        ({"type": "stall", "times": 1.5}, "times must be a whole number"),
        ({"type": "disconnect", "retry_after_ms": 5}, "unknown key 'retry_after_ms'"),
        ({"type": "http_error", "retry_after": 1, "retry_after_ms": 1}, "not both"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_fault(bad)


@pytest.mark.parametrize(
    "fault, headers",
    [
        ("http_error; status=429", {"retry-after": "2"}),
        ("http_error; status=429; retry_after=0", {"retry-after": "0"}),
        ("http_error; status=503", {}),
        ("http_error; status=503; retry_after=7", {"retry-after": "7"}),
        ("http_error; status=429; retry_after_ms=1500", {"retry-after": "2", "retry-after-ms": "1500"}),
        ("http_error; status=500; retry_after_ms=10", {"retry-after": "1", "retry-after-ms": "10"}),
    ],
)
def test_the_wait_an_error_names(client: httpx.Client, validator: Any, fault: str, headers: dict[str, str]) -> None:
    response = client.post(URL, json=ask("Say hello."), headers={"X-Mock-Fault": fault})
    assert validator.validate_response(response.status_code, response.json()) == []
    assert {k: v for k, v in response.headers.items() if k.startswith("retry-after")} == headers


@pytest.mark.parametrize("status", [429, 500, 503])
def test_http_error(client: httpx.Client, validator: Any, status: int) -> None:
    response = client.post(URL, json=ask("Say hello."), headers={"X-Mock-Fault": f"http_error; status={status}"})
    assert response.status_code == status
    assert validator.validate_response(status, response.json()) == []
    if status == 429:
        assert response.headers["retry-after"] == "2"
    else:
        assert "retry-after" not in response.headers


def test_http_error_from_the_fixture(client: httpx.Client, validator: Any) -> None:
    response = client.post(URL, json=ask("Are you busy?"))
    assert response.status_code == 503 and validator.validate_response(503, response.json()) == []
    assert response.json()["error"]["code"] == "service_unavailable"


def test_disconnect_mid_stream(client: httpx.Client) -> None:
    stream = faulty(client, "disconnect; after_chunks=3")
    assert stream.status == 200
    assert isinstance(stream.error, httpx.RemoteProtocolError), "the client sees an incomplete response"
    assert len(stream.events) == 3 and all(e.data != "[DONE]" for e in stream.events)
    assert client.post(URL, json=ask("Say hello.", stream=False)).status_code == 200


def test_disconnect_in_a_json_reply(client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(URL, json=ask("Say hello.", stream=False), headers={"X-Mock-Fault": "disconnect"})


def test_stall(client: httpx.Client) -> None:
    stream = faulty(client, "stall; after_chunks=2; stall_ms=300")
    gaps = [b - a for a, b in zip(stream.arrivals, stream.arrivals[1:])]
    assert gaps[1] >= 0.28, "the third chunk waits for the stall"
    assert max(gaps[:1] + gaps[2:]) < 0.2
    assert stream.events[-1].data == "[DONE]" and stream.problems == []


def test_malformed_chunk(client: httpx.Client, validator: Any) -> None:
    stream = faulty(client, "malformed_chunk; after_chunks=2")
    data = [e.data for e in stream.events]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[2])
    assert data[2].startswith('{"id":"chatcmpl-')
    rest = [json.loads(d) for d in data[:2] + data[3:-1]]
    assert all(validator.validate_event(chunk) == [] for chunk in rest)
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in rest if c["choices"])
        == "Hello! How can I help you today?"
    ), "the stream carries on after the bad chunk"
    assert data[-1] == "[DONE]"


def test_no_done(client: httpx.Client) -> None:
    stream = faulty(client, "no_done")
    assert stream.error is None and stream.problems == []
    assert stream.events and all(e.data != "[DONE]" for e in stream.events)
    assert stream.chunks[-1]["choices"] == [], "everything else, up to the usage chunk, was sent"


def test_keepalive(client: httpx.Client) -> None:
    stream = faulty(client, "keepalive; every_chunks=2")
    assert stream.problems == [] and stream.events[-1].data == "[DONE]"
    assert [c.text for c in stream.comments] == ["ping"] * (len(stream.chunks) // 2)
    assert stream.raw.count(b"\n: ping\n\n") == len(stream.comments)


def test_split_utf8(client: httpx.Client) -> None:
    stream = faulty(client, "split_utf8", "Order a coffee in French.")
    assert stream.problems == [] and stream.events[-1].data == "[DONE]"
    incomplete = []
    for piece in stream.pieces:
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError as exc:
            incomplete.append(exc.reason)
    assert "unexpected end of data" in incomplete, "one network read ends inside a character"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream.chunks if c["choices"])
    assert text == "Un café, s'il vous plaît. Ça fait 3 €."


def test_split_utf8_needs_a_multibyte_character(client: httpx.Client, validator: Any) -> None:
    response = client.post(URL, json=ask("Say hello."), headers={"X-Mock-Fault": "split_utf8"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "fault_not_applicable"
    assert validator.validate_response(400, response.json()) == []


def _statuses(servers: MockServers, folder: Path, seed: int) -> list[tuple[int, str]]:
    served = servers(folder, no_delay=True, seed=seed, fault_rate=0.5, fault_types=("http_error", "keepalive"))
    seen = []
    with served as running, httpx.Client(base_url=running.url, timeout=10) as http:
        for _ in range(12):
            stream = read_stream(http, URL, ask("Say hello."))
            seen.append((stream.status, "ping" if stream.comments else "-"))
    return seen


def test_seeded_fault_rate_replays(mock_server_factory: MockServers, tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "c")
    first = _statuses(mock_server_factory, folder, seed=42)
    assert first == _statuses(mock_server_factory, folder, seed=42)
    kinds = {status for status, _ in first}
    assert 200 in kinds and kinds & {429, 500, 503}, first
    assert any(mark == "ping" for _, mark in first)
