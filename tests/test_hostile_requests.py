"""Requests an attacker or a careless client sends: each is a fast 400 with the contract's Error body, and the
server keeps serving (and keeps a readable journal) afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mock_helpers import MockServers, write_conversations

BAD_BODIES = {
    "nested 20,000 deep in messages": b'{"messages": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "nested 20,000 deep in an unknown field": b'{"messages": [], "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "nested 900 deep": b'{"messages": [], "x": ' + b"[" * 900 + b"]" * 900 + b"}",
    "an integer of 5,000 digits": b'{"messages": [], "model": ' + b"7" * 5_000 + b"}",
    "an integer of 100,000 digits": b'{"messages": [], "model": ' + b"7" * 100_000 + b"}",
    "a lone surrogate in model": b'{"messages": [], "model": "\\ud800"}',
    "NaN": b'{"messages": [{"role": "user", "content": "Say hello."}], "x": NaN}',
    "Infinity": b'{"messages": [{"role": "user", "content": "Say hello."}], "x": Infinity}',
    "1e999999": b'{"messages": [{"role": "user", "content": "Say hello."}], "x": 1e999999}',
}


@pytest.fixture(scope="module")
def client(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = write_conversations(tmp_path_factory.mktemp("conversations"))
    server = module_mock_server_factory(folder, no_delay=True, log_level="critical")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/__mock/fixtures"])
@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_a_hostile_body_is_a_fast_400(client: httpx.Client, validator, name: str, path: str) -> None:
    started = time.monotonic()
    response = client.post(path, content=BAD_BODIES[name], headers={"content-type": "application/json"})
    assert time.monotonic() - started < 5
    assert response.status_code == 400, response.text[:300]
    assert validator.validate_response(400, response.json()) == []
    assert response.json()["error"]["code"] == "invalid_json"
    journal = client.get("/__mock/requests")
    assert journal.status_code == 200 and client.get("/health").json()["status"] == "ok"


def test_ten_thousand_tools_are_refused_fast(client: httpx.Client) -> None:
    tools = [
        {"type": "function", "function": {"name": f"f{i}", "parameters": {"type": "object"}}} for i in range(10_000)
    ]
    started = time.monotonic()
    response = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Say hello."}], "tools": tools, "stream": False},
    )
    assert time.monotonic() - started < 5  # 10,000 schema checks took 5 s of the event loop
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many_tools"


def test_the_journal_keeps_a_summary_of_large_bodies(client: httpx.Client) -> None:
    client.delete("/__mock/requests")
    big = {"messages": [{"role": "user", "content": "x" * 500_000}], "stream": False}
    client.post("/v1/chat/completions", json=big)
    [entry] = client.get("/__mock/requests").json()["requests"]
    assert entry["body"]["truncated"] is True and entry["body"]["bytes"] > 500_000
    assert len(entry["body"]["head"]) <= 2000


STALLS = {  # each of these once blocked the event loop for tens of seconds or minutes
    "a 900 KB message": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "What is the weather " * 45_000}]},
    ),
    "10,000 messages": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": f"hello {i}"} for i in range(10_000)]},
    ),
    "tool parameters asking for 1e9 items": (
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "Call it."}],
            "tool_choice": "required",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "huge",
                        "parameters": {
                            "type": "object",
                            "required": ["xs"],
                            "properties": {"xs": {"type": "array", "minItems": 10**9}},
                        },
                    },
                }
            ],
        },
    ),
    "a 900 KB conversation posted": (
        "/__mock/fixtures",
        {
            "conversation": [
                {"role": "user", "content": "What is the weather " * 45_000},
                {"role": "assistant", "content": "Sunny."},
            ]
        },
    ),
}


@pytest.mark.parametrize("served", [False, True], ids=["fixtures", "fallback"])
@pytest.mark.parametrize("name", list(STALLS))
def test_a_stall_of_old_is_answered_fast_while_a_paced_stream_keeps_its_pace(
    mock_server_factory: MockServers, tmp_path: Path, name: str, served: bool
) -> None:
    """The answer comes within two seconds, and a stream on another connection keeps its 25 ms gaps."""
    import threading

    from mock_helpers import read_stream

    path, body = STALLS[name]
    folder = write_conversations(tmp_path)
    with (
        mock_server_factory(folder, max_body=2_000_000, fallback=served, log_level="critical") as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        paced: dict[str, object] = {}

        def stream() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as own:
                paced["reply"] = read_stream(
                    own,
                    "/v1/chat/completions",
                    {"messages": [{"role": "user", "content": "Say hello."}]},
                    headers={"X-Mock-Pacing": "ttft_ms=50, tokens_per_second=40, jitter=0"},
                )

        worker = threading.Thread(target=stream)
        worker.start()
        started = time.monotonic()
        response = http.post(path, json={**body, "stream": False} if "messages" in body else body)
        assert time.monotonic() - started < 2.0, name
        assert response.status_code < 500, response.text[:200]
        worker.join(timeout=30)
    arrivals = paced["reply"].arrivals  # type: ignore[attr-defined]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(gaps) > 5 and max(gaps) < 0.025 + 0.4, gaps  # 25 ms planned; a blocked loop stalls for seconds


def test_a_client_that_aborts_its_upload_is_no_server_error(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """It was logged as an unexpected error with a traceback, and journaled as a 500."""
    import socket

    client.delete("/__mock/requests")
    host, port = client.base_url.host, client.base_url.port
    with caplog.at_level("INFO", logger="mockserver"):
        with socket.create_connection((host, port)) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n" + b'{"messages": [' + b" " * 1000
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            entries = client.get("/__mock/requests").json()["requests"]
            if entries and entries[-1]["error"]:
                break
            time.sleep(0.05)
    assert entries[-1]["status"] != 500 and entries[-1]["error"]["code"] == "client_disconnected"
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    assert client.get("/health").status_code == 200
