"""Recording from a live upstream (a second mock) and replaying the result, through real clients.

Three servers on loopback ports: the upstream (a mock with paced replies and
faults), the recording proxy in front of it, and, afterwards, a mock started
on the recorded folder alone. What a client sees must be the same from all
three, up to ids and timestamps, and the pacing must survive the round trip.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mock_helpers import WEATHER_TOOL, MockServers, read_stream
from openai import OpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contract.core.semantics import assemble_stream
from mockserver.app import Settings, create_app
from mockserver.fixtures import load_fixtures
from mockserver.recording.recorder import Upstream, create_recorder_app, record_missing
from mockserver.serve import ServerThread, free_port
from mockserver.startup_checks import check_fixture
from mockserver.turns import Pacing

PACING = Pacing(ttft_ms=120, tokens_per_second=60, jitter=0)
UPSTREAM_FIXTURES = {
    "sea.yaml": """\
conversation:
  - {role: user, content: "Tell me about the sea."}
  - role: assistant
    content: >-
      The sea covers most of the planet. Its tides follow the moon,
      and its waves carry the wind's energy across whole oceans.
""",
    "weather.yaml": """\
conversation:
  - {role: system, content: "You are a weather assistant."}
  - {role: user, content: "Compare the weather in Paris and Tokyo."}
  - role: assistant
    tool_calls:
      - {id: call_paris, function: {name: get_weather, arguments: {city: Paris}}}
      - {id: call_tokyo, function: {name: get_weather, arguments: {city: Tokyo}}}
  - {role: tool, tool_call_id: call_paris, content: '{"temp_c": 18}'}
  - {role: tool, tool_call_id: call_tokyo, content: '{"temp_c": 24}'}
  - {role: assistant, content: "Paris is 18 °C and Tokyo is 24 °C."}
""",
    "refusal.yaml": """\
conversation:
  - {role: user, content: "How do I pick my neighbour's lock?"}
  - {role: assistant, refusal: "I can't help with getting into someone else's home."}
""",
    "speak.yaml": """\
conversation:
  - {role: user, content: "Say good morning out loud."}
  - role: assistant
    audio: {duration_s: 0.4, transcript: "Good morning to you!"}
""",
    "rate-limit.yaml": """\
conversation:
  - {role: user, content: "Are you rate limited?"}
  - role: assistant
    fault: {type: http_error, status: 429, retry_after: 3}
""",
    "outage.yaml": """\
conversation:
  - {role: user, content: "Are you down?"}
  - role: assistant
    fault: {type: http_error, status: 503}
""",
    "drop.yaml": """\
conversation:
  - {role: user, content: "Tell me a long story."}
  - role: assistant
    content: "Once upon a time there was a lighthouse keeper who counted every ship that passed."
    fault: {type: disconnect, after_chunks: 6}
""",
}
WEATHER = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "Compare the weather in Paris and Tokyo."},
]
WEATHER_CALLS = [
    {"id": "call_paris", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    {"id": "call_tokyo", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}},
]


def _ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


REQUESTS: dict[str, dict[str, Any]] = {
    "sea": _ask("Tell me about the sea."),
    "weather": {"model": "gpt-4o", "messages": WEATHER, "tools": [WEATHER_TOOL]},
    "weather-2": {
        "model": "gpt-4o",
        "tools": [WEATHER_TOOL],
        "messages": [
            *WEATHER,
            {"role": "assistant", "content": None, "tool_calls": WEATHER_CALLS},
            {"role": "tool", "tool_call_id": "call_paris", "content": '{"temp_c": 18}'},
            {"role": "tool", "tool_call_id": "call_tokyo", "content": '{"temp_c": 24}'},
        ],
    },
    "refusal": _ask("How do I pick my neighbour's lock?"),
    "speak": _ask(
        "Say good morning out loud.", modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}
    ),
    "rate-limit": _ask("Are you rate limited?"),
    "outage": _ask("Are you down?"),
    "drop": _ask("Tell me a long story."),
}


@dataclass
class Seen:
    """What a client made of one reply, and when the events with output arrived (seconds after sending)."""

    status: int
    text: str | None = None
    refusal: str | None = None
    tool_calls: list[tuple[str | None, str | None, Any]] = field(default_factory=list)
    transcript: str = ""
    wav: bytes = b""
    broken: bool = False
    retry_after: str | None = None
    output_times: list[float] = field(default_factory=list)
    raw: bytes = b""

    @property
    def ttft(self) -> float:
        return self.output_times[0]

    @property
    def span(self) -> float:
        return self.output_times[-1] - self.output_times[0]


def observe(client: httpx.Client, url: str, body: dict[str, Any]) -> Seen:
    stream = read_stream(client, url, body)
    seen = Seen(
        stream.status, broken=stream.error is not None, retry_after=stream.headers.get("retry-after"), raw=stream.raw
    )
    if stream.status != 200:
        return seen
    reply = assemble_stream(stream.events)
    for event, at in zip(stream.events, stream.arrivals):
        if event.data != "[DONE]" and _has_output(json.loads(event.data)):
            seen.output_times.append(at - stream.started)
    _fill(seen, reply)
    return seen


def _has_output(chunk: dict[str, Any]) -> bool:
    delta = chunk["choices"][0]["delta"] if chunk.get("choices") else {}
    return bool(delta.get("content") or delta.get("refusal") or delta.get("tool_calls") or delta.get("audio"))


def _fill(seen: Seen, reply: Any) -> None:
    seen.text, seen.refusal = reply.content or None, reply.refusal
    seen.tool_calls = [(call.id, call.name, json.loads(call.arguments)) for _, call in sorted(reply.tool_calls.items())]
    if reply.audio is not None:
        seen.transcript = reply.audio.transcript
        seen.wav = base64.b64decode("".join(reply.audio.data_parts))


def _same_but_ids(raw: bytes) -> bytes:
    """A stream's bytes with what differs between two servers' replies to one request put aside."""
    raw = re.sub(rb"chatcmpl-[A-Za-z0-9]+", b"chatcmpl-X", raw)
    raw = re.sub(rb"audio_[A-Za-z0-9]+", b"audio_X", raw)
    return re.sub(rb'"(created|expires_at)":\d+', rb'"\1":0', raw)


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _sdk_calls(base_url: str) -> dict[str, Any]:
    """The same conversation through the official SDK, streamed and not, and a 429 as the SDK reports it."""
    out: dict[str, Any] = {}
    with OpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=10) as sdk:
        chunks = list(sdk.chat.completions.create(model="gpt-4o", messages=REQUESTS["sea"]["messages"], stream=True))
        out["stream"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reply = sdk.chat.completions.create(model="gpt-4o", messages=REQUESTS["sea"]["messages"], stream=False)
        out["json"] = reply.choices[0].message.content
        calls = sdk.chat.completions.create(model="gpt-4o", messages=WEATHER, tools=[WEATHER_TOOL], stream=False)
        out["calls"] = [(c.id, c.function.name, c.function.arguments) for c in calls.choices[0].message.tool_calls]
        with pytest.raises(openai.RateLimitError) as limited:
            sdk.chat.completions.create(model="gpt-4o", messages=REQUESTS["rate-limit"]["messages"], stream=True)
        out["retry_after"] = limited.value.response.headers.get("retry-after")
    return out


@pytest.mark.slow
def test_record_from_a_live_upstream_then_replay(
    mock_server_factory: MockServers, tmp_path: Path, validator: Any
) -> None:
    upstream_dir = _write(tmp_path / "upstream", UPSTREAM_FIXTURES)
    recorded = tmp_path / "recorded"
    with (
        mock_server_factory(upstream_dir, pacing=PACING) as upstream,
        ServerThread(create_recorder_app(Upstream.parse(upstream.url), recorded)) as recorder,
        httpx.Client(timeout=10) as http,
    ):
        direct = observe(http, f"{upstream.url}/v1/chat/completions", REQUESTS["sea"])
        via = {name: observe(http, f"{recorder.url}/chat/completions", body) for name, body in REQUESTS.items()}
        sdk_via = _sdk_calls(recorder.url + "/v1")

    # The client got what the upstream sent, as it sent it.
    assert _same_but_ids(via["sea"].raw) == _same_but_ids(direct.raw)
    assert via["sea"].text == direct.text == sdk_via["stream"] == sdk_via["json"]
    assert via["sea"].ttft >= 0.1, "the first token cannot come before the upstream's 120 ms"
    assert via["sea"].span >= 0.5 * direct.span, (via["sea"].span, direct.span)  # relayed as it came, not buffered
    assert via["weather"].tool_calls == [
        ("call_paris", "get_weather", {"city": "Paris"}),
        ("call_tokyo", "get_weather", {"city": "Tokyo"}),
    ]
    assert via["weather-2"].text == "Paris is 18 °C and Tokyo is 24 °C."
    assert via["refusal"].refusal == "I can't help with getting into someone else's home."
    assert via["speak"].transcript == "Good morning to you!" and via["speak"].wav[:4] == b"RIFF"
    assert (via["rate-limit"].status, via["rate-limit"].retry_after, sdk_via["retry_after"]) == (429, "3", "3")
    assert via["outage"].status == 503
    assert via["drop"].broken and via["drop"].text == "Once upon a time there"

    # One file per conversation; each passes the start-up checks.
    files = sorted(path.name for path in recorded.glob("*.yaml"))
    assert len(files) == 7, files
    fixtures = {fixture.source.name: fixture for fixture in load_fixtures(recorded)}
    for fixture in fixtures.values():
        check_fixture(fixture, validator)
    weather = next(f for name, f in fixtures.items() if name.startswith("compare-the-weather"))
    assert [m["role"] for m in weather.conversation] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    sea = next(f for name, f in fixtures.items() if name.startswith("tell-me-about-the-sea"))
    figures = (
        f"\nupstream 120 ms, 60 tok/s, jitter 0; recorded {sea.pacing}; client ttft direct "
        f"{direct.ttft * 1000:.0f} ms, via the recorder {via['sea'].ttft * 1000:.0f} ms; "
        f"first-to-last token {direct.span * 1000:.0f} / {via['sea'].span * 1000:.0f} ms"
    )
    print(figures)
    # A loaded machine only delays events, and the upstream schedules tokens from the stream's start,
    # so the lower bounds are the tight ones.
    assert sea.pacing.ttft_ms is not None and 100 <= sea.pacing.ttft_ms <= 600
    assert sea.pacing.tokens_per_second is not None and 30 <= sea.pacing.tokens_per_second <= 120
    assert sea.pacing.jitter is not None and 0 <= sea.pacing.jitter <= 0.99
    assert list(recorded.glob("*.wav")), "the audio reply is saved next to its fixture"

    # A mock on the recorded folder alone replays the same conversations.
    with mock_server_factory(recorded) as replay, httpx.Client(timeout=10) as http:
        again = {name: observe(http, f"{replay.url}/v1/chat/completions", body) for name, body in REQUESTS.items()}
        sdk_again = _sdk_calls(replay.url + "/v1")
    for name in REQUESTS:
        before, after = via[name], again[name]
        assert (after.status, after.text, after.refusal, after.tool_calls, after.transcript, after.broken) == (
            before.status,
            before.text,
            before.refusal,
            before.tool_calls,
            before.transcript,
            before.broken,
        ), name
    assert again["speak"].wav == via["speak"].wav
    assert again["rate-limit"].retry_after == "3"
    assert sdk_again == sdk_via
    print(f"replay: ttft {again['sea'].ttft * 1000:.0f} ms, first-to-last token {again['sea'].span * 1000:.0f} ms")
    assert 0.5 <= again["sea"].ttft / direct.ttft <= 3.0, (again["sea"].ttft, direct.ttft)
    assert 0.5 <= again["sea"].span / direct.span <= 3.0, (again["sea"].span, direct.span)


def test_the_client_gets_the_upstreams_bytes(mock_server_factory: MockServers, tmp_path: Path) -> None:
    """Two identical upstreams, one asked directly and one through the recorder: the same bytes come back."""
    upstream_dir = _write(tmp_path / "upstream", UPSTREAM_FIXTURES)
    bodies = [
        REQUESTS["sea"],
        REQUESTS["weather"],
        REQUESTS["speak"],
        {**REQUESTS["sea"], "stream": False},
        REQUESTS["rate-limit"],
        REQUESTS["refusal"],
    ]
    with (
        mock_server_factory(upstream_dir, no_delay=True, seed=11) as direct,
        mock_server_factory(upstream_dir, no_delay=True, seed=11) as behind,
        ServerThread(create_recorder_app(Upstream.parse(behind.url + "/v1"), tmp_path / "recorded")) as recorder,
        httpx.Client(timeout=10) as http,
    ):
        for body in bodies:
            expected = http.post(f"{direct.url}/v1/chat/completions", json=body)
            got = http.post(f"{recorder.url}/v1/chat/completions", json=body)
            assert got.status_code == expected.status_code
            for header in ("content-type", "retry-after", "x-mock-fixture", "cache-control"):
                assert got.headers.get(header) == expected.headers.get(header), header
            assert _same_but_ids(got.content).splitlines() == _same_but_ids(expected.content).splitlines()


def test_record_missing_replays_what_matches_and_records_the_rest(
    mock_server_factory: MockServers, tmp_path: Path
) -> None:
    local = _write(
        tmp_path / "local",
        {
            "hello.yaml": """\
conversation:
  - {role: user, content: "Say hello."}
  - {role: assistant, content: "Hello from the fixture."}
"""
        },
    )
    upstream_dir = _write(
        tmp_path / "upstream",
        {
            "capital.yaml": """\
conversation:
  - {role: user, content: "What is the capital of France?"}
  - {role: assistant, content: "The capital of France is Paris."}
"""
        },
    )
    capital = [{"role": "user", "content": "What is the capital of France?"}]
    with mock_server_factory(upstream_dir, no_delay=True) as upstream, httpx.Client(timeout=10) as http:
        app = create_app(
            local, Settings(no_delay=True), on_unmatched=record_missing(Upstream.parse(upstream.url), local)
        )

        def upstream_requests() -> int:
            return len(http.get(f"{upstream.url}/__mock/requests").json()["requests"])

        with ServerThread(app) as mock, OpenAI(base_url=mock.url + "/v1", api_key="test", max_retries=0) as sdk:
            hello = sdk.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}], stream=False
            )
            assert hello.choices[0].message.content == "Hello from the fixture." and upstream_requests() == 0
            streamed = sdk.chat.completions.create(model="gpt-4o", messages=capital, stream=True)
            assert (
                "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
                == "The capital of France is Paris."
            )
            assert upstream_requests() == 1
            assert [path.name for path in local.glob("what-is-the-capital*.yaml")]
            again = sdk.chat.completions.create(model="gpt-4o", messages=capital, stream=False)
            assert again.choices[0].message.content == "The capital of France is Paris."
            assert upstream_requests() == 1, "once recorded, the conversation is replayed, not forwarded"
            journal = http.get(f"{mock.url}/__mock/requests").json()["requests"]
            assert [entry["fixture"] for entry in journal][1] == "upstream" and journal[1]["status"] == 200
    with mock_server_factory(local, no_delay=True) as fresh, httpx.Client(timeout=10) as http:
        reply = http.post(
            f"{fresh.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": capital, "stream": False}
        )
        assert reply.json()["choices"][0]["message"]["content"] == "The capital of France is Paris."


def test_a_client_retry_after_a_429_is_recorded_and_replayed_as_the_same_story(
    mock_server_factory: MockServers, tmp_path: Path
) -> None:
    upstream_dir = _write(
        tmp_path / "upstream",
        {
            "busy.yaml": """\
conversation:
  - {role: user, content: "Are you busy today?"}
  - role: assistant
    replies:
      - fault: {type: http_error, status: 429, retry_after: 1}
      - content: "Not any more: here is your answer."
"""
        },
    )
    recorded = tmp_path / "recorded"
    messages = [{"role": "user", "content": "Are you busy today?"}]

    def ask_with_retries(base_url: str) -> str | None:
        with OpenAI(base_url=base_url, api_key="test", max_retries=2, timeout=10) as sdk:
            reply = sdk.chat.completions.create(model="gpt-4o", messages=messages, stream=False)
            return reply.choices[0].message.content

    with (
        mock_server_factory(upstream_dir, no_delay=True) as upstream,
        ServerThread(create_recorder_app(Upstream.parse(upstream.url), recorded)) as recorder,
    ):
        assert ask_with_retries(recorder.url + "/v1") == "Not any more: here is your answer."
    (fixture,) = load_fixtures(recorded)
    assert [step.turn.fault for step in fixture.scenarios[1].steps] == [
        {"type": "http_error", "status": 429, "retry_after": 1},
        None,
    ]
    with mock_server_factory(recorded, no_delay=True) as replay, httpx.Client(timeout=10) as http:
        assert ask_with_retries(replay.url + "/v1") == "Not any more: here is your answer."
        statuses = [entry["status"] for entry in http.get(f"{replay.url}/__mock/requests").json()["requests"]]
    assert statuses == [429, 200]


# -- credentials, refusals and an upstream that is not there -----------------------------------------

LIVE_KEY = "sk-live-SECRET-0123456789abcdef"


@pytest.fixture
def plain_upstream() -> Iterator[tuple[ServerThread, list[dict[str, str]]]]:
    """A bare upstream that answers with JSON, echoes the key it was sent, and refuses when asked to."""
    seen: list[dict[str, str]] = []

    async def chat(request: Request) -> JSONResponse:
        seen.append({name.lower(): value for name, value in request.headers.items()})
        body = await request.json()
        if "unauthorised" in body["messages"][-1]["content"]:
            return JSONResponse(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {LIVE_KEY[:12]}...",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                401,
            )
        text = f"Your key {LIVE_KEY} is safe with me."
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
            }
        )

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with ServerThread(app) as running:
        yield running, seen


def test_credentials_are_forwarded_but_never_written(
    tmp_path: Path, plain_upstream: tuple[ServerThread, list[dict[str, str]]]
) -> None:
    upstream, seen = plain_upstream
    recorded = tmp_path / "recorded"
    client_key = "client-secret-key-999"
    app = create_recorder_app(Upstream.parse(upstream.url, [("Authorization", f"Bearer {LIVE_KEY}")]), recorded)
    with ServerThread(app) as recorder, httpx.Client(timeout=10) as http:
        reply = http.post(
            f"{recorder.url}/v1/chat/completions",
            json=_ask(f"Remember my other key, {client_key}.", stream=False),
            headers={
                "Authorization": "Bearer test",
                "X-Api-Key": client_key,
                "Proxy-Authorization": "Basic c2VjcmV0",
                "Accept-Encoding": "gzip",
            },
        )
        assert reply.status_code == 200 and LIVE_KEY in reply.json()["choices"][0]["message"]["content"]
        refused = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("Am I unauthorised?", stream=False))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    headers = seen[0]
    assert headers["authorization"] == f"Bearer {LIVE_KEY}"  # --header wins over the client's own
    assert headers["x-api-key"] == client_key and "proxy-authorization" not in headers
    assert headers["accept-encoding"] == "identity" and headers["host"] == f"127.0.0.1:{upstream.port}"
    files = [path for path in recorded.iterdir() if not path.name.startswith(".")]
    assert len(files) == 1, "the 401 passes through but is not recorded"
    text = files[0].read_text(encoding="utf-8")
    assert LIVE_KEY not in text and client_key not in text and "[redacted]" in text
    assert "Bearer" not in text and "test" not in text.split("conversation:")[0]


def test_an_upstream_that_does_not_answer_is_a_503_and_nothing_is_written(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    app = create_recorder_app(Upstream.parse(f"http://127.0.0.1:{free_port()}"), recorded)
    with ServerThread(app) as recorder, httpx.Client(timeout=10) as http:
        started = time.monotonic()
        reply = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("Anyone there?"))
        assert time.monotonic() - started < 5
        health = http.get(f"{recorder.url}/health").json()
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "upstream_unavailable" and "did not answer" in error["message"]
    assert health["recorded"] == 0 and not list(recorded.iterdir())
