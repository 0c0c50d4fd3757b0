"""The tokenizer, the chunk builder and pacing, without a server: shapes, arithmetic, determinism."""

from __future__ import annotations

import base64
import io
import json
import random
import wave

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.core.sse import parse_stream
from mockserver.audio import synthesize_wav
from mockserver.stream import (
    DEFAULT_PACING,
    NO_DELAY,
    ReplyIdentity,
    compute_usage,
    layer_pacing,
    pacing_delays,
    parse_pacing_header,
    prompt_tokens,
    render_chunks,
    render_completion,
    usage_override_problem,
)
from mockserver.tokenize import count_tokens, tokenize
from mockserver.turns import AssistantTurn, AudioReply, Pacing

IDENTITY = ReplyIdentity.new(random.Random(1), "gpt-4o", 1_700_000_000)
MESSAGES = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


# -- tokenizer ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_tokens_concatenate_to_the_text(text: str) -> None:
    pieces = tokenize(text)
    assert "".join(pieces) == text
    assert all(pieces), "no empty piece"
    assert count_tokens(text) == len(pieces)


def test_tokens_look_like_word_pieces() -> None:
    text = "A funny 18 °C in Paris. Temperature: 1234567 degrees, internationalization!"
    pieces = tokenize(text)
    assert " Paris" in pieces and " fun" in pieces and "ny" in pieces and "." in pieces
    assert "123" in pieces and "456" in pieces and "7" in pieces  # digits in groups of at most three
    words = text.split()
    assert len(pieces) > len(words), "longer words are split into pieces"
    assert any(len(p.strip()) == 1 for p in pieces) and any(len(p.strip()) >= 4 for p in pieces)
    lengths = {len(p) for p in pieces}
    assert len(lengths) > 3, "not fixed-size slices"
    assert max(len(p) for p in pieces) <= 8


def test_multibyte_text_tokenizes() -> None:
    text = "Ça coûte 5 € — 你好世界，天气很好 🌤️"
    assert "".join(tokenize(text)) == text


# -- chunks ---------------------------------------------------------------------------------------


def _assembled_content(chunks: list) -> str:
    return "".join(c.data["choices"][0]["delta"].get("content") or "" for c in chunks if c.data["choices"])


def test_text_stream_shape_and_validity(validator) -> None:
    turn = AssistantTurn(content="It is 18 °C and sunny in Paris.")
    usage = compute_usage(MESSAGES, turn)
    chunks = render_chunks(turn, IDENTITY, usage)
    for chunk in chunks:
        assert validator.validate_event(chunk.data) == []
        assert (chunk.data["id"], chunk.data["created"], chunk.data["model"]) == (
            IDENTITY.id,
            IDENTITY.created,
            "gpt-4o",
        )
    assert chunks[0].data["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert _assembled_content(chunks) == turn.content
    content_chunks = [c for c in chunks if c.data["choices"] and c.data["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == count_tokens(turn.content)
    finishes = [c.data["choices"][0]["finish_reason"] for c in chunks if c.data["choices"]]
    assert finishes[:-1] == [None] * (len(finishes) - 1) and finishes[-1] == "stop"
    assert chunks[-1].data["choices"] == [] and chunks[-1].data["usage"] == usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == count_tokens(turn.content)
    assert usage["prompt_tokens"] == prompt_tokens(MESSAGES) > count_tokens("What is the weather in Paris?")
    items, problems = parse_stream(b"".join(c.encode() for c in chunks) + b"data: [DONE]\n\n")
    assert problems == []
    assert [json.loads(item.data) for item in items[:-1]] == [c.data for c in chunks]


def test_parallel_tool_calls_stream_per_index(validator) -> None:
    calls = (
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    )
    turn = AssistantTurn(tool_calls=calls)
    chunks = render_chunks(turn, IDENTITY, compute_usage(MESSAGES, turn))
    assembled: dict[int, dict] = {}
    for chunk in chunks:
        assert validator.validate_event(chunk.data) == []
        for call in (chunk.data["choices"][0]["delta"].get("tool_calls") or []) if chunk.data["choices"] else []:
            slot = assembled.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            if "id" in call:
                assert slot["id"] is None, "the header delta comes once per call"
                assert call["function"]["arguments"] == "" and call["type"] == "function"
                slot["id"], slot["name"] = call["id"], call["function"]["name"]
            else:
                assert set(call) == {"index", "function"}
                slot["arguments"] += call["function"]["arguments"]
    assert assembled == {
        0: {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
    }
    assert chunks[0].data["choices"][0]["delta"]["content"] is None
    assert chunks[-2].data["choices"][0]["finish_reason"] == "tool_calls"


def test_audio_stream_and_response(validator) -> None:
    wav = synthesize_wav(0.6, seed=3)
    turn = AssistantTurn(audio=AudioReply(wav=wav, transcript="Hello from Paris."))
    usage = compute_usage(MESSAGES, turn)
    chunks = render_chunks(turn, IDENTITY, usage)
    audio = [
        c.data["choices"][0]["delta"]["audio"]
        for c in chunks
        if c.data["choices"] and "audio" in c.data["choices"][0]["delta"]
    ]
    assert audio[0]["id"].startswith("audio_") and "expires_at" in audio[-1]
    data = "".join(a.get("data", "") for a in audio)
    assert base64.b64decode(data) == wav
    assert all(len(a["data"]) % 4 == 0 for a in audio if "data" in a), "every piece decodes on its own"
    assert "".join(a.get("transcript", "") for a in audio) == "Hello from Paris."
    for chunk in chunks:
        assert validator.validate_event(chunk.data) == []
    response = render_completion(turn, IDENTITY, usage)
    assert validator.validate_response(200, response) == []
    with wave.open(io.BytesIO(base64.b64decode(response["choices"][0]["message"]["audio"]["data"]))) as reader:
        assert reader.getnframes() > 0


def test_refusal_and_response_validity(validator) -> None:
    turn = AssistantTurn(refusal="I can't help with that request.")
    usage = compute_usage(MESSAGES, turn)
    chunks = render_chunks(turn, IDENTITY, usage)
    text = "".join(c.data["choices"][0]["delta"].get("refusal") or "" for c in chunks if c.data["choices"])
    assert text == turn.refusal
    response = render_completion(turn, IDENTITY, usage)
    assert validator.validate_response(200, response) == []
    assert validator.validate_event(response) != [], "a response must not pass as a chunk"
    assert response["choices"][0]["message"]["refusal"] == turn.refusal


def test_usage_override_wins_field_by_field() -> None:
    turn = AssistantTurn(content="Hello.", usage={"prompt_tokens": 1000})
    usage = compute_usage(MESSAGES, turn)
    assert usage["prompt_tokens"] == 1000
    assert usage["total_tokens"] == 1000 + usage["completion_tokens"]
    assert usage_override_problem({"total_tokens": 5, "prompt_tokens": 2, "completion_tokens": 2}) is not None
    assert usage_override_problem({"total_tokens": 5}) is not None
    assert usage_override_problem({"total_tokens": 5, "prompt_tokens": 2, "completion_tokens": 3}) is None


# -- pacing ---------------------------------------------------------------------------------------


def test_pacing_layers_and_header() -> None:
    header = parse_pacing_header("ttft_ms=100, tokens_per_second=50")
    fixture = Pacing(ttft_ms=300, jitter=0.1)
    resolved = layer_pacing(header, fixture, Pacing(tokens_per_second=10))
    assert resolved == Pacing(ttft_ms=100, tokens_per_second=50, jitter=0.1)
    assert layer_pacing(None) == DEFAULT_PACING
    assert parse_pacing_header("none") == NO_DELAY
    for bad in ("ttft=3", "ttft_ms=fast", "jitter=2", "tokens_per_second=-1"):
        with pytest.raises(ValueError, match="X-Mock-Pacing"):
            parse_pacing_header(bad)


def test_delays_are_seeded_and_shaped() -> None:
    turn = AssistantTurn(content="It is 18 °C and sunny in Paris.")
    chunks = render_chunks(turn, IDENTITY, compute_usage(MESSAGES, turn))
    pacing = Pacing(ttft_ms=200, tokens_per_second=50, jitter=0.2)
    first = pacing_delays([chunk.paced for chunk in chunks], pacing, random.Random(7))
    assert first == pacing_delays([chunk.paced for chunk in chunks], pacing, random.Random(7))
    assert first != pacing_delays([chunk.paced for chunk in chunks], pacing, random.Random(8))
    assert first[0] == 0.0, "the role chunk is not delayed"
    assert 0.16 <= first[1] <= 0.24
    assert all(0.016 <= d <= 0.024 for d in first[2:-2])
    assert first[-2:] == [0.0, 0.0]
    assert json.dumps(chunks[1].data, ensure_ascii=False).count("content") == 1


@pytest.mark.parametrize("size", [4_000, 200_000, 1_000_000])
def test_one_long_word_is_cut_linearly_not_recursively(size: int) -> None:
    """A pasted blob with no spaces once recursed once per four letters (4 KB: RecursionError)."""
    import time

    from mockserver.tokenize import tokenize

    word = "q" * size
    started = time.perf_counter()
    pieces = tokenize(word)
    assert "".join(pieces) == word and max(map(len, pieces)) <= 8
    assert time.perf_counter() - started < 2.0  # linear: 1 MB takes ~50 ms


def test_a_huge_prompt_is_counted_within_bounded_work() -> None:
    from mockserver.tokenize import COUNT_EXACTLY, count_tokens, tokenize

    prose = "The weather in Paris is sunny today, 23 degrees. " * 20_000
    exact_rate = len(tokenize(prose[:COUNT_EXACTLY])) / COUNT_EXACTLY
    assert count_tokens(prose) == round(exact_rate * len(prose))
    assert count_tokens(prose[:1000]) == len(tokenize(prose[:1000]))  # short texts are counted exactly


@pytest.mark.parametrize(
    "header",
    [
        "tokens_per_second=1e-300",
        "tokens_per_second=0.01",
        "tokens_per_second=nan",
        "tokens_per_second=inf",
        "ttft_ms=nan",
        "jitter=nan",
        "ttft_ms=1e309",
    ],
)
def test_pacing_that_would_hold_a_stream_forever_is_refused(header: str) -> None:
    from mockserver.stream import parse_pacing_header

    with pytest.raises(ValueError, match="X-Mock-Pacing: "):
        parse_pacing_header(header)
    assert parse_pacing_header("tokens_per_second=0").tokens_per_second == 0  # 0 still means "no wait"


@pytest.mark.parametrize(
    "field, value",
    [
        ("ttft_ms", -1),
        ("ttft_ms", 700_000),
        ("tokens_per_second", 0.01),
        ("tokens_per_second", 2e6),
        ("jitter", 1),
        ("jitter", -0.5),
    ],
)
def test_pacing_refuses_a_bad_value_in_the_same_words_wherever_it_is_given(
    field: str, value: float, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mockserver.cli import main
    from mockserver.fixtures import FixtureError, load_fixture_file
    from mockserver.turns import Pacing, PacingError

    with pytest.raises(PacingError) as made:
        Pacing(**{field: value})
    reason = made.value.reason
    with pytest.raises(ValueError) as header:
        parse_pacing_header(f"{field}={value}")
    assert str(header.value) == f"X-Mock-Pacing: {field} {reason}"
    fixture = tmp_path / "paced.json"
    fixture.write_text(
        json.dumps(
            {
                "conversation": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                "stream": {field: value},
            }
        )
    )
    with pytest.raises(FixtureError) as loaded:
        load_fixture_file(fixture)
    assert str(loaded.value).endswith(f"stream.{field} {reason}")
    flag = "--" + field.replace("_", "-")
    with pytest.raises(SystemExit) as exited:
        main([flag, str(value), "--port", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == f"mockserver: {flag} {reason}"
