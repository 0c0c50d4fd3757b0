"""The mock under ``--profile openai``, driven by the official SDK and httpx, checked with the profile's validator;
and the seed profile's hint for the clients that omit ``stream``.

Bad inputs handled here: ``n`` of 0 and 129, ``logprobs: true``, an unknown model id, a fixture whose
``stream_default`` is not a boolean, a ``json_object`` request answered by a fixture that is not JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mock_helpers import MockServers, RunningMock, read_stream
from openai import BadRequestError, NotFoundError, OpenAI

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator
from mockserver.fixtures import FixtureError, load_fixtures
from mockserver.recording.recorder import Upstream, create_recorder_app
from mockserver.serve import ServerThread

pytest_plugins = ["pytester"]

WEATHER = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    },
]
HELLO = [{"role": "user", "content": "Hello!"}]


@pytest.fixture(scope="module")
def openai_validator() -> ContractValidator:
    return ContractValidator(load_spec(profile="openai"))


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers) -> RunningMock:
    return module_mock_server_factory(None, no_delay=True, profile="openai")


@pytest.fixture()
def sdk(server: RunningMock) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture()
def http(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def test_a_request_without_stream_gets_one_json_body(sdk: OpenAI, openai_validator: ContractValidator) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert raw.headers["content-type"].startswith("application/json")
    assert "x-mock-stream-default" not in raw.headers
    body = json.loads(raw.text)
    assert openai_validator.validate_response(200, body) == []
    assert raw.parse().choices[0].message.content.startswith("Hello! I am a mock model")


def test_the_usage_chunk_comes_only_when_asked(
    sdk: OpenAI, http: httpx.Client, openai_validator: ContractValidator
) -> None:
    # The openai-python README's loop: chunk.choices[0] on every chunk, which a usage chunk would break.
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in sdk.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    )
    assert text.startswith("Hello! I am a mock model")
    plain = read_stream(http, "/v1/chat/completions", {"messages": HELLO, "stream": True})
    asked = read_stream(
        http, "/v1/chat/completions", {"messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    )
    for stream in (plain, asked):
        assert not stream.problems and stream.events[-1].data == "[DONE]"
        assert all(openai_validator.validate_event(chunk) == [] for chunk in stream.chunks)
    assert all(chunk["choices"] for chunk in plain.chunks)
    assert asked.chunks[-1]["choices"] == [] and asked.chunks[-1]["usage"]["total_tokens"] > 0
    assert len(asked.chunks) == len(plain.chunks) + 1


def test_developer_matches_like_system_and_content_may_be_text_parts(sdk: OpenAI, http: httpx.Client) -> None:
    reply = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Say hello."},
        ],
    )
    assert reply.choices[0].message.content == "Bonjour ! Comment puis-je vous aider aujourd'hui ?"
    assert http.get("/__mock/requests").json()["requests"][-1]["fixture"] == "french-hello"


def test_json_object_gets_one_json_object(sdk: OpenAI, mock_server_factory: MockServers, tmp_path: Path) -> None:
    made_up = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "List three colours."}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(made_up.choices[0].message.content or ""), dict)
    (tmp_path / "prose.yaml").write_text(
        "conversation:\n  - {role: user, content: Describe Paris.}\n  - {role: assistant, content: A city.}\n"
    )
    with (
        mock_server_factory(tmp_path, no_delay=True, profile="openai") as strict,
        OpenAI(base_url=strict.url + "/v1", api_key="test", max_retries=0) as client,
    ):
        with pytest.raises(BadRequestError) as caught:
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Describe Paris."}],
                response_format={"type": "json_object"},
            )
        assert caught.value.code == "fixture_mismatch"
        assert "response_format json_object" in str(caught.value)
        assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Describe Paris."}])


def test_n_returns_n_choices_streamed_or_not(
    sdk: OpenAI, http: httpx.Client, openai_validator: ContractValidator
) -> None:
    reply = sdk.chat.completions.create(model="gpt-4o", messages=HELLO, n=3)
    assert [choice.index for choice in reply.choices] == [0, 1, 2]
    assert len({choice.message.content for choice in reply.choices}) == 1, "a fixture answers every choice alike"
    assert reply.usage is not None and reply.usage.completion_tokens == 3 * (
        sdk.chat.completions.create(model="gpt-4o", messages=HELLO).usage.completion_tokens  # type: ignore[union-attr]
    )
    made_up = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Name a fruit."}], n=2)
    assert len({choice.message.content for choice in made_up.choices}) == 2, "the fallback varies its choices"
    stream = read_stream(http, "/v1/chat/completions", {"messages": HELLO, "stream": True, "n": 2})
    assert all(openai_validator.validate_event(chunk) == [] for chunk in stream.chunks)
    texts: dict[int, str] = {}
    for chunk in stream.chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + (choice["delta"].get("content") or "")
    assert texts[0] == texts[1] == reply.choices[0].message.content
    finishes = [c["index"] for chunk in stream.chunks for c in chunk["choices"] if c["finish_reason"]]
    assert finishes == [0, 1], "each choice ends once"


@pytest.mark.parametrize("n", [0, 129])
def test_n_out_of_range_is_a_contract_error(sdk: OpenAI, n: int) -> None:
    with pytest.raises(BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=HELLO, n=n)
    assert caught.value.code == "invalid_request" and caught.value.param == "n"


def test_logprobs_is_a_listed_refusal(sdk: OpenAI) -> None:
    with pytest.raises(BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=HELLO, logprobs=True)
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "logprobs")
    refusals = load_spec(profile="openai").raw["components"]["responses"]["BadRequest"]["x-refusals"]
    assert {"code": "unsupported_parameter", "param": "logprobs"}.items() <= next(
        r for r in refusals if r["code"] == "unsupported_parameter"
    ).items()
    assert sdk.chat.completions.create(model="gpt-4o", messages=HELLO, logprobs=False).choices


def test_one_model_is_retrieved_and_an_unknown_one_is_the_apis_404(
    sdk: OpenAI, http: httpx.Client, openai_validator: ContractValidator
) -> None:
    assert sdk.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(NotFoundError) as caught:
        sdk.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
    missing = http.get("/v1/models/no-such-model")
    assert openai_validator.validate_response(404, missing.json()) == []
    assert http.get("/health").status_code == 200


def test_the_fallback_names_the_fixture_it_nearly_was(sdk: OpenAI) -> None:
    messages = [*WEATHER, {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18, "sky": "sunny"}'}]
    raw = sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    label = raw.headers["x-mock-fixture"]
    assert label.startswith("fallback; nearest: paris-weather (paris-weather.yaml:"), label
    assert "message 4 (tool)" in label


def test_the_plugin_report_shows_the_nearest_fixture(pytester: pytest.Pytester) -> None:
    messages = [*WEATHER, {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18, "sky": "sunny"}'}]
    pytester.makepyfile(
        f"""
        import httpx

        def test_weather(mockserver_factory):
            server = mockserver_factory(profile="openai")
            reply = httpx.post(server.url + "/chat/completions", json={{"model": "gpt-4o", "messages": {messages!r}}})
            assert reply.headers["content-type"].startswith("application/json")
            assert reply.json()["choices"][0]["message"]["content"] == "It is 18 °C and sunny in Paris."
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*fallback*", "*nearest fixture: paris-weather (paris-weather.yaml:*): message 4 (tool)*"]
    )


# -- the seed profile's hint ----------------------------------------------------------------------


def test_the_seed_profile_marks_a_stream_nobody_asked_for(
    mock_server_factory: MockServers, caplog: pytest.LogCaptureFixture
) -> None:
    with mock_server_factory(None, no_delay=True) as seed, httpx.Client(base_url=seed.url) as http:
        with caplog.at_level(logging.WARNING, logger="mockserver"):
            for agent in ("litellm/1.80.0", "ai/6.0.1 ai-sdk/provider-utils/3.0", "litellm/1.80.0"):
                omitted = http.post("/v1/chat/completions", json={"messages": HELLO}, headers={"user-agent": agent})
                assert omitted.headers["content-type"].startswith("text/event-stream")
                assert omitted.headers["x-mock-stream-default"].startswith("true; this contract streams")
                assert "--profile openai" in omitted.headers["x-mock-stream-default"]
        asked = http.post("/v1/chat/completions", json={"messages": HELLO, "stream": True})
        assert "x-mock-stream-default" not in asked.headers
    warnings = [r.getMessage() for r in caplog.records if "has no 'stream'" in r.getMessage()]
    assert [w.split()[3] for w in warnings] == ["litellm/1.80.0", "ai/6.0.1"], "once per client, whatever the client"
    assert all("--profile openai" in w for w in warnings)


# -- recording ------------------------------------------------------------------------------------


def test_a_recorded_json_answer_to_a_request_without_stream_replays_as_json(
    mock_server_factory: MockServers, tmp_path: Path
) -> None:
    recorded = tmp_path / "recorded"
    question = [{"role": "user", "content": "Say hello."}]
    with (
        mock_server_factory(None, no_delay=True, profile="openai") as upstream,
        ServerThread(create_recorder_app(Upstream.parse(upstream.url + "/v1"), recorded)) as recorder,
    ):
        answer = httpx.post(recorder.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": question})
        assert answer.headers["content-type"].startswith("application/json")
        streamed = httpx.post(
            recorder.url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}], "stream": True},
        )
        assert streamed.headers["content-type"].startswith("text/event-stream")
    by_question = {f.conversation[0]["content"]: f for f in load_fixtures(recorded)}
    assert by_question["Say hello."].turns[1].stream_default is False
    assert by_question["Hello!"].turns[1].stream_default is None, "the client said stream: true; nothing to keep"
    with mock_server_factory(recorded, no_delay=True) as replay:  # the seed profile streams by default
        again = httpx.post(replay.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": question})
        assert again.headers["content-type"].startswith("application/json"), "answered as it was recorded"
        assert again.json()["choices"][0]["message"]["content"] == answer.json()["choices"][0]["message"]["content"]
        asked = httpx.post(
            replay.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": question, "stream": True}
        )
        assert asked.headers["content-type"].startswith("text/event-stream"), "stream as given still wins"


def test_stream_default_must_be_a_boolean(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "conversation:\n  - {role: user, content: Hi}\n  - {role: assistant, content: Hello, stream_default: 'yes'}\n"
    )
    with pytest.raises(FixtureError) as caught:
        load_fixtures(tmp_path)
    assert "bad.yaml:3" in str(caught.value) and "stream_default must be true" in str(caught.value)
