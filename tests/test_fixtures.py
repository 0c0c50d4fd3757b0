"""Fixture files: the bundled set loads and obeys the contract; every mistake is one `file:line:` error."""

from __future__ import annotations

import io
import json
import textwrap
import wave
from pathlib import Path

import pytest

from mockserver.audio import read_wav, synthesize_wav, wav_duration
from mockserver.fixtures import (
    FAULT_TYPES,
    Fixture,
    FixtureError,
    check_fixture_messages,
    fixture_from_dict,
    load_fixture_file,
    load_fixtures,
    messages_item_pointer,
)
from mockserver.turns import Pacing

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "fixtures"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(action, *args) -> str:
    with pytest.raises(FixtureError) as caught:
        action(*args)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


# -- the bundled fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> dict[str, Fixture]:
    return {fixture.name: fixture for fixture in load_fixtures(BUNDLED)}


def test_bundled_fixtures_load_and_every_message_obeys_the_contract(bundled, validator):
    assert len(bundled) >= 15
    for fixture in bundled.values():
        check_fixture_messages(fixture, validator)
        assert fixture.turns, fixture.name
        for index, turn in fixture.turns.items():
            assert fixture.conversation[index]["role"] == "assistant"
            scenario = fixture.scenarios.get(index)
            sources = {step.turn.source for step in scenario.steps} if scenario else {turn.source}
            lines = {int(source.rsplit(":", 1)[1]) for source in sources}
            # a turn names its own line; each entry of a turn's replies names the entry's line
            assert sources == {f"{fixture.source}:{fixture.line_of[index]}"} or (
                len(lines) > 1 and min(lines) > fixture.line_of[index]
            )


def test_bundled_fixtures_show_every_feature(bundled):
    turns = [turn for fixture in bundled.values() for turn in fixture.turns.values()]
    assert any(len(turn.tool_calls) >= 2 for turn in turns), "parallel tool calls"
    assert any(turn.refusal and not turn.content for turn in turns), "refusal"
    assert any(turn.audio and turn.audio.source is None for turn in turns), "synthesised audio"
    assert any(turn.audio and turn.audio.source is not None for turn in turns), "audio from a WAV file"
    assert any(turn.usage for turn in turns), "usage override"
    assert {turn.finish_reason for turn in turns} >= {"length"}
    assert {turn.fault["type"] for turn in turns if turn.fault} == set(FAULT_TYPES)
    conditions = {key for fixture in bundled.values() for key in fixture.match}
    assert {"model", "tools", "modalities", "response_format"} <= conditions
    matchers = {
        key
        for fixture in bundled.values()
        for message in fixture.conversation
        if isinstance(message.get("content"), dict)
        for key in message["content"]
    }
    assert matchers == {"contains", "regex"}
    assert any(fixture.source.suffix == ".json" for fixture in bundled.values())
    assert any(fixture.source.parent != BUNDLED for fixture in bundled.values()), "a sub-folder"
    scenarios = [scenario for fixture in bundled.values() for scenario in fixture.scenarios.values()]
    assert any(
        len(scenario.steps) == 2
        and scenario.steps[0].times == 1
        and scenario.steps[0].turn.fault
        and scenario.steps[0].turn.fault["type"] == "http_error"
        for scenario in scenarios
    ), "replies"
    assert any(
        scenario.steps[0].turn.fault
        and scenario.steps[1].turn.fault is None
        and scenario.steps[0].turn.content == scenario.steps[1].turn.content
        for scenario in scenarios
    ), "fault.times"


def test_fault_fixtures_use_the_documented_parameter_names(bundled):
    parameters = {
        "http_error": {"status", "retry_after"},
        "disconnect": {"after_chunks"},
        "stall": {"after_chunks", "stall_ms"},
        "malformed_chunk": {"after_chunks"},
        "keepalive": {"every_chunks"},
        "no_done": set(),
        "split_utf8": set(),
    }
    for fixture in bundled.values():
        for turn in fixture.turns.values():
            if turn.fault:
                assert set(turn.fault) - {"type"} <= parameters[turn.fault["type"]], fixture.name
    split = bundled["split-utf8"].turns[1].content
    assert any(len(ch.encode()) >= 3 for ch in split) and any(len(ch.encode()) == 2 for ch in split)


def test_paris_weather_is_the_documented_example(bundled):
    paris = bundled["paris-weather"]
    assert paris.match == {"model": "gpt-4o"}
    assert paris.pacing == Pacing(ttft_ms=250, tokens_per_second=40, jitter=0.2)
    assert sorted(paris.turns) == [2, 4]
    call = paris.turns[2].tool_calls[0]
    assert call == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    assert paris.turns[2].effective_finish_reason == "tool_calls"
    assert paris.turns[4].content == "It is 18 °C and sunny in Paris."
    # the assistant turn appears in the conversation as a client sends it back
    assert paris.conversation[2] == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert paris.line_of == {0: 8, 1: 9, 2: 10, 3: 13, 4: 14}


def test_tool_messages_without_an_id_take_the_calls_of_the_turn_before(bundled):
    parallel = bundled["parallel-weather"]
    calls = parallel.turns[1].tool_calls
    assert [c["function"]["arguments"] for c in calls] == ['{"city": "Paris"}', '{"city": "Tokyo"}']
    assert [parallel.conversation[i]["tool_call_id"] for i in (2, 3)] == [c["id"] for c in calls]


def test_synthesised_audio_is_deterministic_and_as_long_as_asked(bundled):
    audio = bundled["audio-reply"].turns[1].audio
    assert audio is not None and audio.transcript
    assert wav_duration(audio.wav) == pytest.approx(1.5, abs=0.001)
    again = load_fixture_file(bundled["audio-reply"].source).turns[1].audio
    assert again is not None and again.wav == audio.wav


def test_the_json_schema_example_content_is_valid_for_its_documented_schema(bundled):
    content = json.loads(bundled["structured-output"].turns[2].content)
    assert isinstance(content["city"], str) and isinstance(content["temp_c"], (int, float))


# -- audio helpers --------------------------------------------------------------------------------------


def test_synthesize_wav_is_seeded_pcm16_mono_and_not_silence():
    wav = synthesize_wav(0.5, seed=1)
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 24000)
        frames = reader.readframes(reader.getnframes())
    assert max(frames) > 0 and len(set(frames)) > 50
    assert wav == synthesize_wav(0.5, seed=1) and wav != synthesize_wav(0.5, seed=2)
    assert wav_duration(synthesize_wav(0.25, sample_rate=16000)) == pytest.approx(0.25)
    for bad in (0, -1, float("nan"), 10_000):
        with pytest.raises(ValueError):
            synthesize_wav(bad)


def test_read_wav_says_why_a_file_is_not_a_wav(tmp_path):
    good = tmp_path / "ok.wav"
    good.write_bytes(synthesize_wav(0.1))
    assert read_wav(good) == good.read_bytes()
    for content, reason in (
        (b"hello, not audio", "no RIFF/WAVE header"),
        (synthesize_wav(0.1)[:30], "not a readable WAV file"),
    ):
        bad = tmp_path / "bad.wav"
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=reason):
            read_wav(bad)
    with pytest.raises(ValueError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


# -- every mistake: file, line, and what is wrong -------------------------------------------------------

BAD_YAML = {
    "yaml syntax error": (
        """
        conversation:
          - {role: user, content: "hi"
          - {role: assistant, content: "hello"}
        """,
        3,
        "YAML syntax error",
    ),
    "unknown top-level key": (
        """
        name: typo
        conversaton:
          - {role: user, content: "hi"}
        """,
        2,
        "unknown key 'conversaton' in the fixture; did you mean 'conversation'?",
    ),
    "unknown key in a turn": (
        """
        conversation:
          - {role: user, content: "hi"}
          - role: assistant
            tool_call:
              - {function: {name: f, arguments: "{}"}}
        """,
        4,
        "unknown key 'tool_call' in an assistant turn; did you mean 'tool_calls'?",
    ),
    "unknown match condition": (
        """
        match:
          modle: gpt-4o
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello"}
        """,
        2,
        "unknown key 'modle' in match; did you mean 'model'?",
    ),
    "duplicate key": (
        """
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello"}
        conversation:
          - {role: user, content: "bye"}
        """,
        4,
        "duplicate key 'conversation' (first at line 1)",
    ),
    "empty assistant turn": (
        """
        conversation:
          - {role: user, content: "hi"}
          - role: assistant
        """,
        3,
        "assistant turn (message 2) has nothing to say",
    ),
    "tool_calls not a list": (
        """
        conversation:
          - {role: user, content: "weather?"}
          - role: assistant
            tool_calls:
              id: call_1
              function: {name: get_weather, arguments: "{}"}
        """,
        4,
        "tool_calls must be a list",
    ),
    "arguments not JSON": (
        """
        conversation:
          - {role: user, content: "weather?"}
          - role: assistant
            tool_calls:
              - function:
                  name: get_weather
                  arguments: "{city: Paris}"
        """,
        7,
        "arguments are not JSON",
    ),
    "arguments not an object": (
        """
        conversation:
          - {role: user, content: "weather?"}
          - role: assistant
            tool_calls:
              - function: {name: get_weather, arguments: "[1, 2]"}
        """,
        5,
        "arguments must encode a JSON object, got array",
    ),
    "bad regex": (
        """
        conversation:
          - role: user
            content:
              regex: "^What (is"
          - {role: assistant, content: "hello"}
        """,
        4,
        "bad regex '^What (is': missing ), unterminated subpattern",
    ),
    "unknown matcher": (
        """
        conversation:
          - role: user
            content: {contain: weather}
          - {role: assistant, content: "hello"}
        """,
        3,
        "unknown key 'contain' in a content matcher; did you mean 'contains'?",
    ),
    "missing WAV": (
        """
        conversation:
          - {role: user, content: "speak"}
          - role: assistant
            audio:
              file: nowhere.wav
              transcript: "hi"
        """,
        5,
        "audio file 'nowhere.wav' not found",
    ),
    "no assistant turn": (
        """
        conversation:
          - {role: system, content: "Be brief."}
          - {role: user, content: "hi"}
        """,
        1,
        "the conversation has no assistant turn",
    ),
    "conversation missing": (
        """
        name: nothing
        """,
        1,
        "missing 'conversation'",
    ),
    "unknown fault type": (
        """
        conversation:
          - {role: user, content: "hi"}
          - role: assistant
            content: "hello"
            fault: {type: disconect, after_chunks: 2}
        """,
        5,
        "unknown fault type \"disconect\"; did you mean 'disconnect'?",
    ),
    "bad finish_reason": (
        """
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello", finish_reason: done}
        """,
        3,
        "finish_reason must be one of stop, length, content_filter, tool_calls",
    ),
    "bad pacing": (
        """
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello"}
        stream:
          tokens_per_second: 0.01
        """,
        5,
        "stream.tokens_per_second must be 0 (no wait) or between 0.1 and 1e+06, got 0.01",
    ),
    "pacing not a number": (
        """
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello"}
        stream:
          jitter: lots
        """,
        5,
        'stream.jitter must be a number, got "lots"',
    ),
    "inconsistent usage": (
        """
        conversation:
          - {role: user, content: "hi"}
          - role: assistant
            content: "hello"
            usage: {prompt_tokens: 3, completion_tokens: 2, total_tokens: 9}
        """,
        5,
        "usage.total_tokens is 9, but prompt_tokens + completion_tokens is 5",
    ),
    "json_schema reply that is not JSON": (
        """
        match: {response_format: json_schema}
        conversation:
          - {role: user, content: "data please"}
          - role: assistant
            content: "not json"
        """,
        5,
        "its content must be JSON",
    ),
    "empty file": ("", 1, "the file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_YAML))
def test_a_bad_yaml_fixture_names_file_line_and_problem(tmp_path, case):
    text, line, problem = BAD_YAML[case]
    path = write(tmp_path, "bad.yaml", text)
    message = error_of(load_fixture_file, path)
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message


def test_a_file_that_is_not_a_wav_is_named_with_its_line(tmp_path):
    (tmp_path / "reply.wav").write_text("this is text, not audio")
    path = write(
        tmp_path,
        "speak.yaml",
        """
        conversation:
          - {role: user, content: "speak"}
          - role: assistant
            audio: {file: reply.wav, transcript: "hi"}
        """,
    )
    message = error_of(load_fixture_file, path)
    assert message == f"{path}:4: audio file 'reply.wav': not a WAV file (no RIFF/WAVE header)"


def test_a_wav_next_to_the_fixture_is_loaded(tmp_path):
    wav = synthesize_wav(0.2, seed=9)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "reply.wav").write_bytes(wav)
    path = write(
        tmp_path,
        "sub/speak.yaml",
        """
        conversation:
          - {role: user, content: "speak"}
          - role: assistant
            audio: {file: reply.wav, transcript: "hi"}
        """,
    )
    audio = load_fixture_file(path).turns[1].audio
    assert audio is not None and audio.wav == wav and audio.source == tmp_path / "sub" / "reply.wav"


def test_a_message_that_breaks_the_contract_is_named_at_start_up(tmp_path, validator):
    path = write(
        tmp_path,
        "robot.yaml",
        """
        conversation:
          - {role: user, content: "hi"}
          - {role: robot, content: "beep"}
          - {role: assistant, content: "hello"}
        """,
    )
    fixture = load_fixture_file(path)
    message = error_of(check_fixture_messages, fixture, validator)
    assert message.startswith(f"{path}:3: message 2: ")
    assert "robot" in message and "matches no branch of oneOf" in message


def test_a_contract_break_inside_a_part_is_found(tmp_path, validator):
    path = write(
        tmp_path,
        "parts.yaml",
        """
        conversation:
          - role: user
            content:
              - {type: text, text: "look"}
              - {type: image_url}
          - {role: assistant, content: "a cat"}
        """,
    )
    message = error_of(check_fixture_messages, load_fixture_file(path), validator)
    assert message.startswith(f"{path}:2: message 1: ")
    assert "image_url" in message


def test_matcher_messages_are_checked_for_everything_but_their_content(tmp_path, validator):
    path = write(
        tmp_path,
        "matcher.yaml",
        """
        conversation:
          - {role: user, content: {contains: weather}, name: 42}
          - {role: assistant, content: "sunny"}
        """,
    )
    message = error_of(check_fixture_messages, load_fixture_file(path), validator)
    assert message.startswith(f"{path}:2: message 1: ") and "name" in message


def test_the_messages_schema_is_found_through_the_document(validator):
    pointer = messages_item_pointer(validator.spec)
    assert pointer == "#/components/schemas/ChatCompletionRequest/properties/messages/items"


def test_duplicate_names_across_two_files_name_both_files(tmp_path):
    first = write(
        tmp_path,
        "a/one.yaml",
        """
        name: greeting
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello"}
        """,
    )
    second = write(
        tmp_path,
        "b/two.yaml",
        """
        # same name by mistake
        name: greeting
        conversation:
          - {role: user, content: "hey"}
          - {role: assistant, content: "hello"}
        """,
    )
    message = error_of(load_fixtures, tmp_path)
    assert message.startswith(f"{second}:2: fixture name 'greeting' is already used by {first}:1")


def test_default_names_are_file_stems_and_clash_across_folders(tmp_path):
    body = """
        conversation:
          - {role: user, content: "hi"}
          - {role: assistant, content: "hello"}
        """
    write(tmp_path, "a/hello.yaml", body)
    write(tmp_path, "b/hello.yml", body)
    assert "fixture name 'hello' is already used by" in error_of(load_fixtures, tmp_path)


def test_folder_loading_is_sorted_recursive_and_skips_hidden_and_other_files(tmp_path):
    body = """
        conversation:
          - {role: user, content: "%s"}
          - {role: assistant, content: "ok"}
        """
    write(tmp_path, "b.yaml", body % "b")
    write(tmp_path, "a/z.yml", body % "z")
    write(tmp_path, ".hidden/x.yaml", "not: [valid")
    write(tmp_path, "notes.txt", "not a fixture")
    (tmp_path / "c.json").write_text(
        json.dumps({"conversation": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "ok"}]})
    )
    assert [f.name for f in load_fixtures(tmp_path)] == ["z", "b", "c"]
    assert "no such folder" in error_of(load_fixtures, tmp_path / "missing")


def test_json_fixtures_report_lines_too(tmp_path):
    syntax = tmp_path / "syntax.json"
    syntax.write_text('{\n  "conversation": [\n    {"role": "user", "content": "hi"},,\n  ]\n}\n')
    assert error_of(load_fixture_file, syntax).startswith(f"{syntax}:3: JSON syntax error: ")
    typo = tmp_path / "typo.json"
    typo.write_text(
        json.dumps(
            {
                "conversation": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello", "refusl": "no"},
                ]
            },
            indent=2,
        )
    )
    message = error_of(load_fixture_file, typo)
    assert message.startswith(f"{typo}:10: unknown key 'refusl'"), message


def test_non_utf8_files_are_refused_with_their_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b'conversation:\n  - {role: user, content: "caf\xe9"}\n')
    assert error_of(load_fixture_file, path) == f"{path}:2: not UTF-8 text (byte 44)"


def test_yaml_dates_stay_text(tmp_path):
    path = write(
        tmp_path,
        "date.yaml",
        """
        conversation:
          - {role: user, content: 2024-01-01}
          - {role: assistant, content: "a Monday"}
        """,
    )
    assert load_fixture_file(path).conversation[0]["content"] == "2024-01-01"


# -- fixtures from Python ----------------------------------------------------------------------------


def test_fixture_from_dict_builds_a_fixture_with_deterministic_ids(validator):
    data = {
        "conversation": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
                    {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
                ],
            },
            {"role": "tool", "content": '{"temp_c": 3}'},
            {"role": "tool", "content": '{"temp_c": 21}'},
            {"role": "assistant", "content": "Oslo is cold, Rome is warm."},
        ]
    }
    first = fixture_from_dict(data)
    second = fixture_from_dict(data)
    check_fixture_messages(first, validator)
    ids = [call["id"] for call in first.turns[1].tool_calls]
    assert ids == [call["id"] for call in second.turns[1].tool_calls] and len(set(ids)) == 2
    assert all(i.startswith("call_") for i in ids)
    assert [first.conversation[i]["tool_call_id"] for i in (2, 3)] == ids
    assert first.name == second.name and first.name.startswith("python-")
    assert str(first.source) == "<python>" and first.line_of == {i: 0 for i in range(5)}
    named = fixture_from_dict(data, name="oslo-rome")
    assert named.name == "oslo-rome"
    assert [c["id"] for c in named.turns[1].tool_calls] != ids  # ids derive from the name
    assert data["conversation"][2] == {"role": "tool", "content": '{"temp_c": 3}'}  # input left untouched


def test_fixture_from_dict_errors_name_the_key_path():
    message = error_of(
        fixture_from_dict,
        {
            "conversation": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": {"function": {"name": "f"}}},
            ]
        },
    )
    assert message.startswith("<python>: conversation[1].tool_calls: tool_calls must be a list")


def test_a_match_the_contract_can_never_meet_is_refused_at_load(tmp_path: Path) -> None:
    """``match: {response_format: json_object}`` used to load and then match nothing, silently."""
    from mockserver.fixtures import load_fixtures

    (tmp_path / "json-object.yaml").write_text(
        "match:\n  response_format: json_object\nconversation:\n"
        "  - {role: user, content: Hi}\n  - {role: assistant, content: '{}'}\n"
    )
    with pytest.raises(
        FixtureError,
        match=r"json-object\.yaml:2: match\.response_format must be one of text, "
        r"json_schema",
    ):
        load_fixtures(tmp_path)
