"""Matching requests to fixture turns: exact steps, normalisation, matchers, conditions, near misses, speed."""

from __future__ import annotations

import base64
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from mockserver.fixtures import Fixture, fixture_from_dict, load_fixtures
from mockserver.matching import FixtureIndex, Match
from mockserver.near_misses import NearMiss

ROOT = Path(__file__).resolve().parent.parent

SYSTEM = {"role": "system", "content": "You are a weather assistant."}
QUESTION = {"role": "user", "content": "What is the weather in Paris?"}


@pytest.fixture(scope="module")
def index() -> FixtureIndex:
    return FixtureIndex(load_fixtures(ROOT / "fixtures"))


def matched(result: Match | list[NearMiss]) -> Match:
    assert isinstance(result, Match), "no match; near misses: " + "; ".join(map(str, result))
    return result


def missed(result: Match | list[NearMiss]) -> list[NearMiss]:
    assert isinstance(result, list), f"unexpected match with {result.fixture.name}"
    return result


def one(conversation: list[dict[str, Any]], match: dict[str, Any] | None = None, name: str | None = None) -> Fixture:
    data: dict[str, Any] = {"conversation": conversation}
    if match:
        data["match"] = match
    return fixture_from_dict(data, name=name)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def reply(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


# -- the multi-turn paris conversation, step by step ----------------------------------------------------


def test_each_step_of_the_paris_conversation_gets_its_own_turn(index):
    first = matched(index.lookup({"model": "gpt-4o", "messages": [SYSTEM, QUESTION]}))
    assert (first.fixture.name, first.turn_index) == ("paris-weather", 2)
    call = first.turn.tool_calls[0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}

    # What the openai SDK sends back: the assistant message as it parsed it (content null,
    # extra null fields, arguments re-serialised without spaces), then the tool result.
    echoed = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [
            {"id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    tool = {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c":18}'}
    second = matched(index.lookup({"model": "gpt-4o", "messages": [SYSTEM, QUESTION, echoed, tool]}))
    assert (second.fixture.name, second.turn_index) == ("paris-weather", 4)
    assert second.turn.content == "It is 18 °C and sunny in Paris."


def test_parallel_calls_then_both_tool_results(index):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    question = user("Compare the weather in Paris and Tokyo.")
    first = matched(index.lookup({"messages": [question], "tools": tools}))
    calls = first.turn.tool_calls
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather"]
    echoed = {"role": "assistant", "tool_calls": [dict(c) for c in calls]}  # no content key at all
    results = [
        {"role": "tool", "tool_call_id": c["id"], "content": r}
        for c, r in zip(calls, ['{"sky": "sunny", "temp_c": 18}', '{"temp_c": 24, "sky": "light rain"}'])
    ]
    second = matched(index.lookup({"messages": [question, echoed, *results], "tools": tools}))
    assert second.turn_index == 4 and "Tokyo" in (second.turn.content or "")


def test_a_tool_call_id_the_client_changed_is_a_near_miss(index):
    echoed = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    tool = {"role": "tool", "tool_call_id": "call_9", "content": '{"temp_c": 18}'}
    misses = missed(index.lookup({"model": "gpt-4o", "messages": [SYSTEM, QUESTION, echoed, tool]}))
    assert misses[0].fixture.name == "paris-weather" and misses[0].message_index == 2
    assert misses[0].reason == "message 3 (assistant): tool call 1: expected id call_1, got call_9"


# -- normalisation and parts -------------------------------------------------------------------------


def test_whitespace_is_collapsed_in_every_message(index):
    messages = [
        {"role": "system", "content": "  You are a\nweather   assistant. "},
        {"role": "user", "content": "What is\tthe weather in Paris?\n"},
    ]
    assert matched(index.lookup({"model": "gpt-4o", "messages": messages})).fixture.name == "paris-weather"
    split_word = [SYSTEM, user("What is the weather in Par is?")]
    assert isinstance(index.lookup({"model": "gpt-4o", "messages": split_word}), list)


def test_a_string_equals_a_single_text_part_and_system_parts_compare_alike():
    fixture = one([{"role": "system", "content": "Be brief."}, user("Hi there"), reply("Hi.")])
    idx = FixtureIndex([fixture])
    as_parts = [{"role": "system", "content": ["Be brief."]}, user([{"type": "text", "text": "Hi  there"}])]
    assert matched(idx.lookup({"messages": as_parts})).fixture is fixture
    two_parts = [
        {"role": "system", "content": "Be brief."},
        user([{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]),
    ]
    miss = missed(idx.lookup({"messages": two_parts}))[0]
    assert miss.reason == "message 2 (user): expected 1 content part, got 2"


def png(payload: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(payload).decode()


def test_images_compare_by_url_and_data_urls_by_their_bytes():
    picture = b"\x89PNG fake picture bytes" * 20
    fixture = one(
        [
            user(
                [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": png(picture)},
                    {"type": "image_url", "image_url": "https://example.com/cat.png"},
                ]
            ),
            reply("A cat, twice."),
        ]
    )
    idx = FixtureIndex([fixture])
    wrapped = base64.b64encode(picture).decode()
    wrapped = "\n".join(wrapped[i : i + 76] for i in range(0, len(wrapped), 76))  # MIME line breaks
    same = user(
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + wrapped, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]
    )
    assert matched(idx.lookup({"messages": [same]})).fixture is fixture
    other = user(
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": png(picture + b"!")},
            {"type": "image_url", "image_url": "https://example.com/cat.png"},
        ]
    )
    miss = missed(idx.lookup({"messages": [other]}))[0]
    assert miss.reason.startswith("message 1 (user): part 2: expected image sha256:")
    swapped = user(
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": "https://example.com/dog.png"},
            {"type": "image_url", "image_url": png(picture)},
        ]
    )
    assert "part 2: expected image sha256:" in missed(idx.lookup({"messages": [swapped]}))[0].reason


def test_audio_parts_compare_by_format_and_data():
    clip = base64.b64encode(b"RIFF....WAVEfmt fake audio").decode()
    fixture = one(
        [user([{"type": "input_audio", "input_audio": {"data": clip, "format": "wav"}}]), reply("I heard you.")]
    )
    idx = FixtureIndex([fixture])
    assert matched(
        idx.lookup({"messages": [user([{"type": "input_audio", "input_audio": {"format": "wav", "data": clip}}])]})
    )
    mp3 = missed(
        idx.lookup({"messages": [user([{"type": "input_audio", "input_audio": {"data": clip, "format": "mp3"}}])]})
    )
    assert mp3[0].reason == "message 1 (user): expected audio format wav, got mp3"
    other = base64.b64encode(b"different audio").decode()
    changed = missed(
        idx.lookup({"messages": [user([{"type": "input_audio", "input_audio": {"data": other, "format": "wav"}}])]})
    )
    assert changed[0].reason.startswith("message 1 (user): audio data differs")


def test_assistant_content_null_absent_and_empty_are_equal_and_tool_json_compares_parsed():
    fixture = one(
        [
            user("Add 2 and 3."),
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}],
            },
            {"role": "tool", "content": '{"sum": 5, "ok": true}'},
            reply("5."),
        ]
    )
    idx = FixtureIndex([fixture])
    calls = [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"b":3,"a":2}'}}]
    for content in ({"content": None}, {}, {"content": ""}):
        echoed = {"role": "assistant", "tool_calls": calls, **content}
        tool = {"role": "tool", "tool_call_id": "c1", "content": '{"ok":true,  "sum":5}'}
        assert matched(idx.lookup({"messages": [user("Add 2 and 3."), echoed, tool]})).turn_index == 3
    wrong = [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 4}'}}]
    miss = missed(
        idx.lookup(
            {
                "messages": [
                    user("Add 2 and 3."),
                    {"role": "assistant", "tool_calls": wrong},
                    {"role": "tool", "tool_call_id": "c1", "content": '{"sum": 6}'},
                ]
            }
        )
    )[0]
    assert miss.reason == (
        'message 2 (assistant): tool call 1: expected add({"a": 2, "b": 3}), got add({"a": 2, "b": 4})'
    )


# -- matchers ---------------------------------------------------------------------------------------


def test_contains_and_regex_matchers(index):
    assert matched(index.lookup({"messages": [user("Tell me a\njoke, please")]})).fixture.name == "matcher-contains"
    assert matched(index.lookup({"messages": [user("WHAT TIME IS IT in Tokyo?")]})).fixture.name == "matcher-regex"
    misses = missed(index.lookup({"messages": [user("Tell me a Joke")]}))
    assert str(misses[0]).startswith("matcher-contains (")
    assert misses[0].reason == 'message 1 (user): "Tell me a Joke" does not contain "joke"'
    assert missed(index.lookup({"messages": [user("whatever time is it")]}))


def test_matchers_compose_with_literal_messages_and_conditions():
    fixture = one(
        [{"role": "system", "content": "Be terse."}, user({"regex": r"^\d+ \+ \d+$"}), reply("Sum.")],
        match={"model": "calc-1"},
    )
    idx = FixtureIndex([fixture])
    assert matched(
        idx.lookup({"model": "calc-1", "messages": [{"role": "system", "content": "Be terse."}, user(" 2 +  2 ")]})
    )
    other_system = missed(
        idx.lookup({"model": "calc-1", "messages": [{"role": "system", "content": "Be long."}, user("2 + 2")]})
    )
    assert other_system[0].reason == 'message 1 (system): expected "Be terse.", got "Be long."'
    wrong_model = missed(
        idx.lookup({"model": "calc-2", "messages": [{"role": "system", "content": "Be terse."}, user("2 + 2")]})
    )
    assert wrong_model[0].reason == "model: expected calc-1, got calc-2"


def test_a_literal_fixture_wins_over_a_matcher_and_more_conditions_win():
    generic = one([user({"contains": "weather"}), reply("generic")], name="generic")
    literal = one([user("weather today?"), reply("literal")], name="literal")
    for_model = one([user("weather today?"), reply("for gpt-4o")], match={"model": "gpt-4o"}, name="for-model")
    idx = FixtureIndex([for_model, literal, generic])
    assert matched(idx.lookup({"messages": [user("weather today?")]})).fixture.name == "literal"
    assert matched(idx.lookup({"model": "gpt-4o", "messages": [user("weather today?")]})).fixture.name == "for-model"
    assert matched(idx.lookup({"messages": [user("any weather?")]})).fixture.name == "generic"
    later = one([user("weather today?"), reply("added later")], name="later")
    idx.add(later)
    assert matched(idx.lookup({"messages": [user("weather today?")]})).fixture.name == "later"


# -- match conditions ---------------------------------------------------------------------------------

CONDITION_CASES = [
    ({"model": "gpt-4o"}, {"model": "gpt-4o"}, {"model": "gpt-3.5"}, "model: expected gpt-4o, got gpt-3.5"),
    ({"model": "gpt-4o"}, {"model": "gpt-4o"}, {}, "model: expected gpt-4o, got none"),
    ({"ssml_enabled": True}, {"ssml_enabled": True}, {}, "ssml_enabled: expected true, got false"),
    ({"ssml_enabled": False}, {}, {"ssml_enabled": True}, "ssml_enabled: expected false, got true"),
    (
        {"context": {"user": {"tier": "pro"}}},
        {"context": {"user": {"tier": "pro", "id": 7}, "locale": "fr"}},
        {"context": {"user": {"tier": "free"}}},
        'context.user.tier: expected "pro", got "free"',
    ),
    (
        {"context": {"locale": "fr"}},
        {"context": {"locale": "fr"}},
        {},
        'context: expected a mapping with {"locale": "fr"}, got nothing',
    ),
    (
        {"tools": ["get_weather"]},
        {
            "tools": [
                {"type": "function", "function": {"name": "get_weather"}},
                {"type": "function", "function": {"name": "get_time"}},
            ]
        },
        {"tools": [{"type": "function", "function": {"name": "get_time"}}]},
        "tools: the request does not offer get_weather (offered: get_time)",
    ),
    (
        {"modalities": ["text", "audio"]},
        {"modalities": ["audio", "text"], "audio": {"voice": "alloy"}},
        {"modalities": ["text"]},
        "modalities: expected [text, audio], got [text]",
    ),
    ({"modalities": ["text"]}, {}, {"modalities": ["text", "audio"]}, "modalities: expected [text], got [text, audio]"),
    (
        {"response_format": "json_schema"},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
        {},
        "response_format: expected json_schema, got none",
    ),
]


@pytest.mark.parametrize("condition, accepted, refused, reason", CONDITION_CASES)
def test_match_conditions(condition, accepted, refused, reason):
    content = '{"ok": true}' if condition.get("response_format") == "json_schema" else "ok"
    fixture = one([user("hello"), reply(content)], match=condition, name="conditional")
    idx = FixtureIndex([fixture])
    assert matched(idx.lookup({"messages": [user("hello")], **accepted})).fixture is fixture
    miss = missed(idx.lookup({"messages": [user("hello")], **refused}))
    assert [m.reason for m in miss] == [reason]
    assert str(miss[0]) == f"conditional (<python>): {reason}"


# -- near misses ----------------------------------------------------------------------------------------


def test_near_misses_name_the_closest_fixture_and_the_first_difference(index):
    misses = missed(index.lookup({"model": "gpt-4o", "messages": [SYSTEM, user("What is the weather in Rome?")]}))
    assert 1 <= len(misses) <= 3
    assert str(misses[0]) == (
        "paris-weather (" + str(ROOT / "fixtures" / "paris-weather.yaml") + ":10): "
        'message 2 (user): expected "What is the weather in Paris?", '
        'got "What is the weather in Rome?"'
    )
    assert misses[0].message_index == 1 and misses[0].turn_index == 2
    assert len({m.fixture.name for m in misses}) == len(misses)


def test_near_miss_for_a_request_longer_than_every_turn(index):
    extra = [SYSTEM, QUESTION, reply("Let me check."), user("Well?")]
    misses = missed(index.lookup({"model": "gpt-4o", "messages": extra}))
    assert misses[0].fixture.name == "paris-weather"
    assert misses[0].reason == 'message 3 (assistant): expected no content, got "Let me check."'
    shorter = one([user("Hi"), reply("Hello")], name="short")
    idx = FixtureIndex([shorter])
    miss = missed(idx.lookup({"messages": [user("Hi"), reply("Hello"), user("Again")]}))[0]
    assert miss.reason == "request has 3 messages, the turn needs 1" and miss.message_index is None


def test_near_misses_rank_by_shared_prefix_then_similarity():
    fixtures = [
        one([{"role": "system", "content": "S"}, user(f"question {word}"), reply("a")], name=word)
        for word in ("alpha", "beta", "gamma", "delta")
    ]
    fixtures.append(one([user("question betas"), reply("b")], name="no-system"))
    idx = FixtureIndex(fixtures)
    misses = missed(idx.lookup({"messages": [{"role": "system", "content": "S"}, user("question betta")]}))
    assert len(misses) == 3
    assert misses[0].fixture.name == "beta"
    assert "no-system" not in [m.fixture.name for m in misses]


def test_long_messages_are_cut_around_the_first_difference():
    text = "word " * 40 + "the end is Paris"
    idx = FixtureIndex([one([user(text), reply("ok")], name="long")])
    reason = missed(idx.lookup({"messages": [user(text.replace("Paris", "Rome"))]}))[0].reason
    assert "Paris" in reason and "Rome" in reason and "…" in reason and len(reason) < 200


def test_an_empty_index_and_odd_bodies_give_no_near_misses_and_no_exception():
    idx = FixtureIndex([])
    assert idx.lookup({"messages": [user("hi")]}) == []
    assert idx.lookup({}) == []
    full = FixtureIndex([one([user("hi"), reply("hello")])])
    assert missed(full.lookup({"messages": "not a list"}))
    assert missed(full.lookup({"messages": [42, {"role": None}, {"role": "user", "content": {"x": 1}}]}))


# -- index speed ---------------------------------------------------------------------------------------


def generated(count: int) -> list[Fixture]:
    """Literal fixtures sharing 50 system prompts, plus one matcher fixture in four."""
    fixtures = []
    for i in range(count):
        if i % 4 == 3:
            conversation = [
                {"role": "system", "content": f"Matcher system {i}"},
                user({"contains": f"token{i}"}),
                reply(f"matched {i}"),
            ]
        else:
            conversation = [
                {"role": "system", "content": f"You are helper number {i % 50}."},
                user(f"Question number {i}?"),
                reply(f"Answer {i}."),
            ]
        fixtures.append(fixture_from_dict({"conversation": conversation}, name=f"gen-{i}"))
    return fixtures


def request_for(i: int) -> dict[str, Any]:
    if i % 4 == 3:
        return {"messages": [{"role": "system", "content": f"Matcher system {i}"}, user(f"a token{i} here")]}
    return {
        "messages": [{"role": "system", "content": f"You are helper number {i % 50}."}, user(f"Question number {i}?")]
    }


def per_lookup_seconds(idx: FixtureIndex, bodies: list[dict[str, Any]], rounds: int, repeat: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            for body in bodies:
                idx.lookup(body)
        samples.append((time.perf_counter() - start) / (repeat * len(bodies)))
    return statistics.median(samples)


def test_lookup_cost_does_not_grow_with_the_number_of_fixtures():
    fixtures = generated(10_000)
    small, big = FixtureIndex(fixtures[:10]), FixtureIndex(fixtures)
    hits = [request_for(i) for i in range(10)]
    for i, body in enumerate(hits):
        for idx in (small, big):
            found = matched(idx.lookup(body))
            assert found.fixture.name == f"gen-{i}"
    small_time = per_lookup_seconds(small, hits, rounds=7, repeat=100)
    big_time = per_lookup_seconds(big, hits, rounds=7, repeat=100)
    print(f"hit: {small_time * 1e6:.1f} us with 10 fixtures, {big_time * 1e6:.1f} us with 10,000")
    assert big_time < 3 * small_time + 20e-6

    # A miss compares a bounded number of candidates: 10,000 fixtures cost about what 1,000 do.
    miss = [{"messages": [{"role": "system", "content": "You are helper number 3."}, user("Something else")]}]
    thousand = FixtureIndex(fixtures[:1000])
    assert missed(big.lookup(miss[0]))[0].reason.startswith('message 2 (user): expected "Question number')
    miss_1k = per_lookup_seconds(thousand, miss, rounds=5, repeat=3)
    miss_10k = per_lookup_seconds(big, miss, rounds=5, repeat=3)
    print(f"miss: {miss_1k * 1e3:.2f} ms with 1,000 fixtures, {miss_10k * 1e3:.2f} ms with 10,000")
    assert miss_10k < 3 * miss_1k + 2e-3


def test_needle_matchers_are_found_through_their_index_among_thousands(monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 turns that differ only in a ``contains`` needle: a lookup checks a handful, not all of them."""
    import mockserver.matching as matching

    fixtures = [
        one([user({"regex": r"^urgent"}), reply("Regex.")], name="regex"),  # unindexed: checked each time
        one([user({"contains": "tic"}), reply("Short needle.")], name="short"),
    ]  # shorter than GRAM
    fixtures += [
        one([user({"contains": f"ticket {n:05d} please"}), reply(f"Ticket {n}.")], name=f"needle-{n}")
        for n in range(5_000)
    ]
    fixtures.append(one([user({"contains": "ticket 00042 please"}), reply("Later, so it wins.")], name="later-42"))
    fixtures.append(
        one(
            [user({"contains": "ticket 00043 please"}), reply("More conditions win.")],
            match={"model": "gpt-4o"},
            name="model-43",
        )
    )
    index = FixtureIndex(fixtures)
    checked = []
    real = matching.matcher_holds
    monkeypatch.setattr(matching, "matcher_holds", lambda m, text: checked.append(m) or real(m, text))

    def answer(text: str, model: str = "gpt-4o-mini") -> str:
        return matched(index.lookup({"model": model, "messages": [user(text)]})).fixture.name

    assert answer("About ticket 01234 please, it is late.") == "needle-1234"
    assert len(checked) <= 5, f"{len(checked)} turns checked for one lookup"
    assert answer("ticket 00042 please") == "later-42"
    assert answer("ticket 00043 please", model="gpt-4o") == "model-43"
    assert answer("ticket 00043 please") == "needle-43"
    assert answer("urgent: ticket 00043") == "short"  # added after the regex one: it wins
    assert answer("urgent: no number") == "regex"
    assert missed(index.lookup({"model": "m", "messages": [user("nothing like it")]}))
    # A message far longer than the index is searched the other way round, with the same answer.
    assert answer("x" * 50_000 + " ticket 04999 please") == "needle-4999"
