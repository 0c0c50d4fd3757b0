"""The mock server over raw HTTP: the wire format, the journal, and every kind of bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import CITY_SCHEMA, WEATHER_TOOL, MockServers, RunningMock, ask, read_stream, write_conversations

from mockserver.app import Settings, create_app
from mockserver.fixtures import FixtureError
from mockserver.tokenize import count_tokens

MAX_BODY = 4096


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    folder = write_conversations(tmp_path_factory.mktemp("conversations"))
    return module_mock_server_factory(folder, no_delay=True, max_body=MAX_BODY, seed=11)


@pytest.fixture()
def client(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def assert_error(response: httpx.Response, status: int, code: str, validator: Any) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert validator.validate_response(status, body) == []
    assert body["error"]["code"] == code
    assert "Traceback" not in body["error"]["message"]
    return body["error"]


def assert_still_serving(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json=ask("Say hello.", stream=False))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello! How can I help you today?"


# -- the wire -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions"])
def test_stream_events_meet_the_contract(client: httpx.Client, validator: Any, path: str) -> None:
    stream = read_stream(
        client,
        path,
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a weather assistant."},
                {"role": "user", "content": "What is the weather in Paris?"},
            ],
        },
    )
    assert stream.status == 200 and stream.error is None
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache" and stream.headers["x-accel-buffering"] == "no"
    assert stream.problems == []
    assert stream.events[-1].data == "[DONE]"
    chunks = stream.chunks
    for chunk in chunks:
        assert validator.validate_event(chunk) == []
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == {(chunks[0]["id"], chunks[0]["created"], "gpt-4o")}
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    choice_chunks = [c for c in chunks if c["choices"]]
    finishes = [c["choices"][0]["finish_reason"] for c in choice_chunks]
    assert finishes == [None] * (len(finishes) - 1) + ["tool_calls"]
    arguments = "".join(
        call["function"].get("arguments", "")
        for c in choice_chunks
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    )
    assert json.loads(arguments) == {"city": "Paris"}
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == count_tokens("get_weather") + count_tokens('{"city": "Paris"}')


def test_stream_absent_means_stream_and_matches_the_json_reply(client: httpx.Client, validator: Any) -> None:
    stream = read_stream(client, "/v1/chat/completions", ask("Say hello."))
    assert stream.headers["content-type"].startswith("text/event-stream")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream.chunks if c["choices"])
    content_chunks = [c for c in stream.chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == count_tokens(text) > len(text.split()), "one word piece per chunk"
    whole = client.post("/v1/chat/completions", json=ask("Say hello.", stream=False))
    assert whole.headers["content-type"].startswith("application/json")
    body = whole.json()
    assert validator.validate_response(200, body) == []
    assert body["object"] == "chat.completion" and body["model"] == "mock-model"
    assert body["choices"][0]["message"]["content"] == text == "Hello! How can I help you today?"
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage == stream.chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_same_seed_replays_the_same_ids(mock_server_factory: MockServers, tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "c")
    ids = []
    for _ in range(2):
        with mock_server_factory(folder, no_delay=True, seed=5) as running, httpx.Client() as http:
            ids.append(
                [
                    http.post(running.url + "/chat/completions", json=ask("Say hello.", stream=False)).json()["id"]
                    for _ in range(2)
                ]
            )
    assert ids[0] == ids[1] and ids[0][0] != ids[0][1]


def test_health_and_journal(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["fixtures"] >= 9
    assert client.delete("/__mock/requests").status_code == 200
    credentials = {
        "Authorization": "Bearer sk-very-secret",
        "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
        "X-Auth-Token": "tok-very-secret",
        "X-Db-Password": "hunter2-secret",
        "X-Trace": "trace-42",
    }
    client.post("/v1/chat/completions", json=ask("Say hello.", stream=False), headers=credentials)
    client.post("/v1/chat/completions", json=ask("Something nobody wrote down."))
    entries = client.get("/__mock/requests").json()["requests"]
    assert [e["status"] for e in entries] == [200, 400]
    assert entries[0]["fixture"] == "hello" and entries[0]["turn"] == 1
    assert entries[0]["body"]["messages"][0]["content"] == "Say hello."
    for name in ("authorization", "proxy-authorization", "x-auth-token", "x-db-password"):
        assert entries[0]["headers"][name] == "[redacted]", name
    assert entries[0]["headers"]["x-trace"] == "trace-42"
    assert not any(
        secret in json.dumps(entries) for secret in ("sk-very-secret", "cHJveHk6c2VjcmV0", "tok-very", "hunter2")
    )
    assert entries[1]["fixture"] is None and entries[1]["near_misses"]
    client.delete("/__mock/requests")
    assert client.get("/__mock/requests").json()["requests"] == []


def test_add_conversation_over_http(client: httpx.Client, validator: Any) -> None:
    added = client.post(
        "/__mock/fixtures",
        json={
            "name": "added-at-run-time",
            "conversation": [
                {"role": "user", "content": {"contains": "favourite colour"}},
                {"role": "assistant", "content": "Blue, like the sky over Paris."},
            ],
        },
    )
    assert added.status_code == 200 and added.json()["name"] == "added-at-run-time"
    reply = client.post("/chat/completions", json=ask("What is your favourite colour?", stream=False))
    assert reply.json()["choices"][0]["message"]["content"] == "Blue, like the sky over Paris."
    bad = client.post("/__mock/fixtures", json={"conversation": [{"role": "user", "content": "no reply"}]})
    assert "assistant" in assert_error(bad, 400, "invalid_fixture", validator)["message"]


# -- bad input ------------------------------------------------------------------------------------


def test_malformed_json(client: httpx.Client, validator: Any) -> None:
    response = client.post(
        "/v1/chat/completions",
        content=b'{"messages": [\n  {"role": "user",, }]}',
        headers={"Content-Type": "application/json"},
    )
    error = assert_error(response, 400, "invalid_json", validator)
    assert "line 2 column" in error["message"]
    assert_still_serving(client)


def test_wrong_content_type(client: httpx.Client, validator: Any) -> None:
    response = client.post(
        "/v1/chat/completions", content=json.dumps(ask("Say hello.")), headers={"Content-Type": "text/plain"}
    )
    error = assert_error(response, 400, "unsupported_content_type", validator)
    assert "text/plain" in error["message"] and "application/json" in error["message"]
    assert_still_serving(client)


def test_oversized_body(client: httpx.Client, validator: Any) -> None:
    response = client.post("/v1/chat/completions", json=ask("x" * (MAX_BODY * 2)))
    error = assert_error(response, 400, "body_too_large", validator)
    assert str(MAX_BODY) in error["message"]
    assert_still_serving(client)


def test_oversized_body_without_length_is_cut_off(client: httpx.Client, validator: Any) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}]}'

    response = client.post("/v1/chat/completions", content=pieces(), headers={"Content-Type": "application/json"})
    assert_error(response, 400, "body_too_large", validator)
    assert_still_serving(client)


def test_contract_violation_names_the_param(client: httpx.Client, validator: Any) -> None:
    response = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "stream": "yes"}
    )
    error = assert_error(response, 400, "invalid_request", validator)
    assert error["param"] == "stream" and "boolean" in error["message"]
    response = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "modalities": ["text", "video"]}
    )
    assert assert_error(response, 400, "invalid_request", validator)["param"] == "modalities[1]"
    response = client.post("/v1/chat/completions", json={"model": "gpt-4o"})
    error = assert_error(response, 400, "invalid_request", validator)
    assert error["param"] == "messages" and "'messages' is required" in error["message"]
    assert_still_serving(client)


def test_no_fixture_match_names_near_misses(
    client: httpx.Client, validator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="mockserver"):
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "You are a weather assistant."},
                    {"role": "user", "content": "What is the weather in Rome?"},
                ],
            },
        )
    error = assert_error(response, 400, "no_fixture_match", validator)
    assert "paris-weather" in error["message"] and "no fixture matches" in error["message"]
    assert any("paris-weather" in record.getMessage() for record in caplog.records)
    assert_still_serving(client)


def test_fixture_that_breaks_response_format(client: httpx.Client, validator: Any) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city", "country"]}
    response = client.post(
        "/v1/chat/completions",
        json=ask(
            "Describe Paris as JSON.",
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
        ),
    )
    error = assert_error(response, 400, "fixture_mismatch", validator)
    assert "city-json" in error["message"] and "city-json.yaml:" in error["message"]
    assert "country" in error["message"]
    ok = client.post(
        "/v1/chat/completions",
        json=ask(
            "Describe Paris as JSON.",
            stream=False,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": CITY_SCHEMA}},
        ),
    )
    assert json.loads(ok.json()["choices"][0]["message"]["content"]) == {"city": "Paris", "temp_c": 18}


def test_fixture_that_breaks_tool_choice(client: httpx.Client, validator: Any) -> None:
    conversation = {
        "model": "gpt-4o",
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": "What is the weather in Paris?"},
        ],
    }
    response = client.post("/v1/chat/completions", json=conversation | {"tool_choice": "none"})
    error = assert_error(response, 400, "fixture_mismatch", validator)
    assert "paris-weather" in error["message"] and "tool_choice 'none'" in error["message"]
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    named = client.post(
        "/v1/chat/completions",
        json=conversation
        | {"tools": [WEATHER_TOOL, clock], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
    )
    message = assert_error(named, 400, "fixture_mismatch", validator)["message"]
    assert "'get_time'" in message and "'get_weather'" in message
    parallel = client.post(
        "/v1/chat/completions",
        json=ask("Compare the weather in Paris and Rome.", tools=[WEATHER_TOOL], parallel_tool_calls=False),
    )
    assert "parallel_tool_calls" in assert_error(parallel, 400, "fixture_mismatch", validator)["message"]
    assert_still_serving(client)


def test_tool_choice_naming_a_tool_not_offered(client: httpx.Client, validator: Any) -> None:
    response = client.post(
        "/v1/chat/completions",
        json=ask(
            "Say hello.", tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "book_flight"}}
        ),
    )
    error = assert_error(response, 400, "invalid_tool_choice", validator)
    assert error["param"] == "tool_choice" and "book_flight" in error["message"]
    assert_still_serving(client)


def test_bad_mock_headers(client: httpx.Client, validator: Any) -> None:
    response = client.post("/v1/chat/completions", json=ask("Say hello."), headers={"X-Mock-Fault": "explode"})
    error = assert_error(response, 400, "invalid_header", validator)
    assert error["param"] == "x-mock-fault" and "explode" in error["message"]
    response = client.post("/v1/chat/completions", json=ask("Say hello."), headers={"X-Mock-Pacing": "speed=9"})
    assert assert_error(response, 400, "invalid_header", validator)["param"] == "x-mock-pacing"
    assert_still_serving(client)


def test_unknown_path_and_method(client: httpx.Client) -> None:
    response = client.get("/v1/no-such-route")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_path"
    response = client.get("/v1/chat/completions")
    assert response.status_code == 405 and "POST" in response.headers["allow"]
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert_still_serving(client)


def test_unexpected_failure_is_a_500_and_the_server_keeps_serving(
    server: RunningMock, client: httpx.Client, validator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = server.app.state.mock.index

    def broken_lookup(body: dict[str, Any]) -> Any:
        raise RuntimeError("index corrupted")

    monkeypatch.setattr(index, "lookup", broken_lookup)
    response = client.post("/v1/chat/completions", json=ask("Say hello."))
    error = assert_error(response, 500, "internal_error", validator)
    assert "index corrupted" not in error["message"]
    monkeypatch.undo()
    assert_still_serving(client)


# -- start-up checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "turn, expected",
    [
        ("{role: assistant, content: 'Hi', fault: {type: disconnect, after_chunks: -1}}", "after_chunks"),
        ("{role: assistant, content: 'Hi', fault: {type: split_utf8}}", "split_utf8"),
        ("{role: assistant, content: 'Hi', usage: {total_tokens: 3}}", "total_tokens"),
        ("{role: assistant, content: 'Hi', fault: {type: http_error, status: 418}}", "418"),
    ],
)
def test_a_reply_that_cannot_be_sent_stops_the_start(tmp_path: Path, turn: str, expected: str) -> None:
    (tmp_path / "broken.yaml").write_text(f"conversation:\n  - {{role: user, content: Hi}}\n  - {turn}\n")
    with pytest.raises(FixtureError) as caught:
        create_app(tmp_path, Settings(no_delay=True))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'broken.yaml'}:3: ") and expected in message
    assert "\n" not in message


# -- pacing ---------------------------------------------------------------------------------------

TTFT_MS, RATE = 150.0, 40.0


def test_paced_stream_keeps_its_ttft_and_rate(client: httpx.Client, record_property: Any) -> None:
    stream = read_stream(
        client,
        "/v1/chat/completions",
        ask("Count to ten in words."),
        headers={"X-Mock-Pacing": f"ttft_ms={TTFT_MS:g}, tokens_per_second={RATE:g}, jitter=0"},
    )
    token_times = [
        at
        for at, event in zip(stream.arrivals, stream.events)
        if event.data != "[DONE]"
        and json.loads(event.data)["choices"]
        and json.loads(event.data)["choices"][0]["delta"].get("content")
    ]
    assert len(token_times) >= 15
    ttft_ms = (token_times[0] - stream.started) * 1000
    rate = (len(token_times) - 1) / (token_times[-1] - token_times[0])
    record_property("ttft_ms", round(ttft_ms, 1))
    record_property("tokens_per_second", round(rate, 2))
    print(
        f"measured TTFT {ttft_ms:.1f} ms (configured {TTFT_MS:g}), rate {rate:.2f} tok/s (configured {RATE:g}), "
        f"{len(token_times)} tokens"
    )
    assert ttft_ms == pytest.approx(TTFT_MS, rel=0.15)
    assert rate == pytest.approx(RATE, rel=0.15)


def test_jitter_is_seeded(mock_server_factory: MockServers, tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "c")
    pacing = {"X-Mock-Pacing": "ttft_ms=20, tokens_per_second=50, jitter=0.5"}
    runs = []
    for _ in range(2):
        with mock_server_factory(folder, seed=9) as running, httpx.Client(base_url=running.url, timeout=10) as http:
            stream = read_stream(http, "/chat/completions", ask("Count to ten in words."), headers=pacing)
            runs.append([b - a for a, b in zip(stream.arrivals[1:], stream.arrivals[2:-3])])
    assert len(runs[0]) > 10
    spread = [abs(a - b) for a, b in zip(*runs)]
    assert sum(spread) / len(spread) < 0.005, "the same seed gives the same delays"
    assert max(runs[0]) > 1.5 * min(runs[0]), "jitter varies the delays"


# -- the default server: bundled fixtures and the fallback ----------------------------------------


@pytest.fixture(scope="module")
def default_server(module_mock_server_factory: MockServers) -> RunningMock:
    return module_mock_server_factory(None, no_delay=True)


def test_default_server_answers_anything(default_server: RunningMock, validator: Any) -> None:
    with httpx.Client(base_url=default_server.url, timeout=10) as http:
        assert http.get("/health").json()["fixtures"] >= 10
        stream = read_stream(http, "/v1/chat/completions", ask("Tell me something nobody has asked before."))
        assert stream.status == 200 and stream.problems == [] and stream.events[-1].data == "[DONE]"
        assert all(validator.validate_event(chunk) == [] for chunk in stream.chunks)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in stream.chunks if c["choices"])
        assert len(text.split()) >= 3
        assert http.get("/__mock/requests").json()["requests"][-1]["fixture"] == "fallback"
        forced = http.post(
            "/v1/chat/completions",
            json=ask(
                "Anything at all.",
                stream=False,
                tools=[WEATHER_TOOL],
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
            ),
        )
        assert validator.validate_response(200, forced.json()) == []
        call = forced.json()["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather" and "city" in json.loads(call["function"]["arguments"])
        refused = http.post(
            "/v1/chat/completions",
            json=ask(
                "Anything at all.",
                tools=[WEATHER_TOOL],
                tool_choice={"type": "function", "function": {"name": "book_flight"}},
            ),
        )
        assert_error(refused, 400, "invalid_tool_choice", validator)
        assert http.post("/v1/chat/completions", json=ask("And now?", stream=False)).status_code == 200


def _head_deadline_protocols() -> list[type]:
    from mockserver import protocol

    found = [protocol.H11HeadDeadlineProtocol]
    if protocol.HttpToolsProtocol is not None:
        found.append(protocol.HttpToolsHeadDeadlineProtocol)
    return found


@pytest.mark.parametrize("protocol", _head_deadline_protocols(), ids=lambda cls: cls.__name__)
def test_connections_that_never_finish_a_request_head_are_closed(
    mock_server_factory: MockServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, protocol: type
) -> None:
    """2,001 slow request heads were all still held after 30 s; each now has a deadline (1 s here)."""
    import socket
    import time

    import mockserver.serve

    monkeypatch.setattr(mockserver.serve, "HeadDeadlineProtocol", protocol)
    monkeypatch.setattr(protocol, "head_timeout", 1.0)
    with mock_server_factory(write_conversations(tmp_path), no_delay=True) as running:
        silent = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(50)]
        trickling = socket.create_connection(("127.0.0.1", running.port))
        started = time.monotonic()
        for byte in b"POST /chat/completions HTTP/1.1\r\n":
            trickling.sendall(bytes([byte]))
            time.sleep(0.02)
        for sock in [*silent, trickling]:
            sock.settimeout(10)
            assert sock.recv(16) == b""  # closed by the server
            sock.close()
        assert time.monotonic() - started < 8  # 1 s deadline, generous for a loaded machine
        with httpx.Client(base_url=running.url, timeout=5) as http:  # still serving, keep-alive still works
            assert http.get("/health").status_code == 200
            time.sleep(1.3)
            assert http.get("/health").status_code == 200
