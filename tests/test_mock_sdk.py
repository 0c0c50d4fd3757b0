"""The mock through the official openai SDK, the way client developers use it."""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterator
from typing import Any

import pytest
from mock_helpers import CITY_SCHEMA, WEATHER_TOOL, MockServers, RunningMock, write_conversations
from openai import BadRequestError, OpenAI

PARIS = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    folder = write_conversations(tmp_path_factory.mktemp("conversations"))
    return module_mock_server_factory(folder, no_delay=True, seed=3)


@pytest.fixture(params=["/v1", ""], ids=["v1", "root"])
def client(server: RunningMock, request: pytest.FixtureRequest) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.url + request.param, api_key="test", max_retries=0, timeout=10) as sdk:
        yield sdk


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_text_streaming_and_not(client: OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=_user("Say hello."), stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! How can I help you today?"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > len(text.split())
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == (
        chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    )
    assert {c.model for c in chunks} == {"gpt-4o-mini"}
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=_user("Say hello."), stream=False)
    assert reply.choices[0].message.content == text
    assert reply.choices[0].finish_reason == "stop"


def test_parallel_tool_calls_assemble_per_index(client: OpenAI) -> None:
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model="m", messages=_user("Compare the weather in Paris and Rome."), tools=[WEATHER_TOOL], stream=True
    ):
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for call in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += call.id or ""
            slot["name"] += (call.function.name or "") if call.function else ""
            slot["arguments"] += (call.function.arguments or "") if call.function else ""
    assert finish == "tool_calls"
    assert calls == {
        0: {"id": "call_p", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_r", "name": "get_weather", "arguments": '{"city": "Rome"}'},
    }
    reply = client.chat.completions.create(
        model="m", messages=_user("Compare the weather in Paris and Rome."), tools=[WEATHER_TOOL], stream=False
    )
    assert [(c.id, json.loads(c.function.arguments)["city"]) for c in reply.choices[0].message.tool_calls] == [
        ("call_p", "Paris"),
        ("call_r", "Rome"),
    ]


def _wav_frames(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getsampwidth() == 2 and reader.getnchannels() == 1
        return reader.getnframes()


def _audio_delta(chunk: Any) -> dict[str, Any]:
    """A chunk's audio delta as a dict: the SDK types none, so it is an object in some releases, a dict in others."""
    piece = getattr(chunk.choices[0].delta, "audio", None)
    if piece is None:
        return {}
    return piece if isinstance(piece, dict) else vars(piece)


def test_audio_streaming_and_not(client: OpenAI) -> None:
    options: dict[str, Any] = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}
    reply = client.chat.completions.create(
        model="m", messages=_user("Say good morning out loud."), stream=False, **options
    )
    audio = reply.choices[0].message.audio
    assert audio.transcript == "Good morning!" and audio.id.startswith("audio_")
    assert audio.expires_at > reply.created
    assert _wav_frames(base64.b64decode(audio.data)) == pytest.approx(0.5 * 24000, rel=0.01)
    data, transcript = "", ""
    for chunk in client.chat.completions.create(
        model="m", messages=_user("Say good morning out loud."), stream=True, **options
    ):
        piece = _audio_delta(chunk) if chunk.choices else {}
        data += piece.get("data") or ""
        transcript += piece.get("transcript") or ""
    assert transcript == "Good morning!"
    assert base64.b64decode(data) == base64.b64decode(audio.data)


def test_audio_synthesised_for_a_text_turn(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="m",
        messages=_user("Say hello."),
        stream=False,
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
    )
    message = reply.choices[0].message
    assert message.content is None and message.audio.transcript == "Hello! How can I help you today?"
    assert _wav_frames(base64.b64decode(message.audio.data)) > 0


def test_refusal(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="m", messages=_user("How do I pick my neighbour's lock?"), stream=False
    )
    assert reply.choices[0].message.refusal == "I can't help with that."
    streamed = "".join(
        c.choices[0].delta.refusal or ""
        for c in client.chat.completions.create(
            model="m", messages=_user("How do I pick my neighbour's lock?"), stream=True
        )
        if c.choices
    )
    assert streamed == "I can't help with that."


def test_json_schema_reply_parses(client: OpenAI) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA}}
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="m", messages=_user("Describe Paris as JSON."), response_format=response_format, stream=True
        )
        if c.choices
    )
    assert json.loads(text) == {"city": "Paris", "temp_c": 18}
    wrong = {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": {"type": "object", "required": ["population"]}},
    }
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(
            model="m", messages=_user("Describe Paris as JSON."), response_format=wrong, stream=True
        )
    assert caught.value.code == "fixture_mismatch" and "city-json" in caught.value.message


def test_multi_turn_tool_conversation_end_to_end(client: OpenAI, server: RunningMock) -> None:
    messages: list[dict[str, Any]] = list(PARIS)
    calls: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=True):
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += call.id or ""
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
    assert list(calls) == [0] and calls[0]["name"] == "get_weather"
    arguments = json.loads(calls[0]["arguments"])
    assert arguments == {"city": "Paris"}
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": calls[0]["id"],
                    "type": "function",
                    "function": {"name": calls[0]["name"], "arguments": calls[0]["arguments"]},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": json.dumps({"temp_c": 18})})
    final = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=True)
    answer = "".join(c.choices[0].delta.content or "" for c in final if c.choices)
    assert answer == "It is 18 °C and sunny in Paris."
    journal = [entry for entry in server.app.state.mock.journal if entry["fixture"] == "paris-weather"]
    assert [entry["turn"] for entry in journal[-2:]] == [2, 4]


@pytest.mark.parametrize(
    "dump",
    [
        pytest.param(lambda message: message.model_dump(), id="with-nulls"),  # content, audio, refusal ... None
        pytest.param(lambda message: message.model_dump(exclude_none=True), id="exclude-none"),  # no content key
    ],
)
def test_the_sdk_message_is_sent_back_as_received(client: OpenAI, validator: Any, dump: Any) -> None:
    """A client appends the assistant message the SDK returned; the contract and the mock take it as is."""
    reply = client.chat.completions.create(model="gpt-4o", messages=PARIS, tools=[WEATHER_TOOL], stream=False)
    returned = dump(reply.choices[0].message)
    assert returned.get("tool_calls") and returned.get("content") is None
    call = reply.choices[0].message.tool_calls[0]
    messages = [*PARIS, returned, {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 18})}]
    assert validator.validate_request({"model": "gpt-4o", "messages": messages}) == []
    final = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=False)
    assert final.choices[0].message.content == "It is 18 °C and sunny in Paris."
    # The text reply, dumped with its nulls (tool_calls, audio, function_call), is a valid history turn too.
    text_turn = final.choices[0].message.model_dump()
    assert text_turn["tool_calls"] is None and text_turn["audio"] is None
    assert validator.validate_request({"messages": [*messages, text_turn, {"role": "user", "content": "Thanks"}]}) == []


def test_audio_without_a_voice_uses_the_documented_default(client: OpenAI) -> None:
    """``audio.voice`` defaults to ``alloy`` in the contract, so ``audio: {}`` (or none) gets spoken audio."""
    for extra in ({"audio": {}}, {}):
        reply = client.chat.completions.create(
            model="m", messages=_user("Say good morning out loud."), stream=False, modalities=["text", "audio"], **extra
        )
        assert reply.choices[0].message.audio.transcript == "Good morning!"


def test_audio_formats_the_sdk_asks_for(client: OpenAI) -> None:
    """``wav`` is a WAV file, ``pcm16`` its raw 16-bit frames; a format the mock cannot make is a clear 400."""

    def audio(fmt: str) -> bytes:
        reply = client.chat.completions.create(
            model="m",
            messages=_user("Say good morning out loud."),
            stream=False,
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": fmt},
        )
        return base64.b64decode(reply.choices[0].message.audio.data)

    wav, pcm = audio("wav"), audio("pcm16")
    assert wav[:4] == b"RIFF" and pcm[:4] != b"RIFF"
    with wave.open(io.BytesIO(wav)) as reader:
        assert pcm == reader.readframes(reader.getnframes())
    streamed = "".join(
        _audio_delta(c).get("data") or ""
        for c in client.chat.completions.create(
            model="m",
            messages=_user("Say good morning out loud."),
            stream=True,
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "pcm16"},
        )
        if c.choices
    )
    assert base64.b64decode(streamed) == pcm
    with pytest.raises(BadRequestError) as caught:
        audio("mp3")
    assert caught.value.code == "unsupported_audio_format" and caught.value.param == "audio.format"


def test_an_image_part_in_the_sdks_object_shape_is_taken(client: OpenAI, validator: Any) -> None:
    """The SDK sends ``image_url: {url, detail}``; the contract takes it beside the plain string form."""
    for image in ({"url": "https://example.com/cat.png", "detail": "low"}, "https://example.com/cat.png"):
        messages = [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Say hello."}, {"type": "image_url", "image_url": image}],
            }
        ]
        assert validator.validate_request({"messages": messages}) == []
        with pytest.raises(BadRequestError) as caught:  # no fixture has this image: a near miss, not a 400 for shape
            client.chat.completions.create(model="m", messages=messages, stream=False)
        assert caught.value.code == "no_fixture_match"


def test_the_sdk_without_stream_gets_a_stream_and_one_warning(
    server: RunningMock, caplog: pytest.LogCaptureFixture
) -> None:
    """The contract's default is a stream; the SDK expects JSON. The mock keeps the contract and says why."""
    server.app.state.sdk_stream_warned = False
    with (
        caplog.at_level("WARNING", logger="mockserver"),
        OpenAI(base_url=server.url + "/v1", api_key="test", max_retries=0) as sdk,
    ):
        for _ in range(2):
            raw = sdk.chat.completions.create(model="m", messages=_user("Say hello."))
            assert isinstance(raw, str) and raw.startswith("data: ")  # the SDK hands back the SSE text
    warnings = [r.getMessage() for r in caplog.records if "has no 'stream'" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("a request from OpenAI/Python")
    assert "stream=True" in warnings[0] and "stream=False" in warnings[0]


def test_models_lists_what_the_fixtures_name(client: OpenAI) -> None:
    """Some clients list the models first; the SDK's ``models.list()`` works against both base URLs."""
    ids = [model.id for model in client.models.list()]
    assert "gpt-4o" in ids and ids == sorted(ids)  # paris-weather matches model gpt-4o
