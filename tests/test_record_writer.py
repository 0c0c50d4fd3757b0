"""The rules of recording, without sockets: pacing measured, faults mapped, conversations found and written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.core.sse import SSEEvent
from contract.core.validate import ContractValidator
from mockserver.fixtures import load_fixture_file, load_fixtures
from mockserver.recording.capture import (
    Capture,
    MeasuredPacing,
    NotRecordable,
    documented_status,
    error_fault,
    measure_pacing,
    merge_pacing,
    recorded_turn,
    retry_after_seconds,
)
from mockserver.recording.upstream import Upstream, upstream_headers
from mockserver.recording.upstream import forwarded_header as parse_header
from mockserver.recording.writer import RECORDED_BY, ConversationStore, NotWritten
from mockserver.startup_checks import check_fixture
from mockserver.stream import ReplyIdentity, render_chunks
from mockserver.turns import AssistantTurn

USER = {"role": "user", "content": "What is the weather in Paris?"}


# -- pacing ---------------------------------------------------------------------------------------


def test_steady_events_measure_their_rate_and_no_jitter() -> None:
    pacing = measure_pacing([0.12, 0.22, 0.32, 0.42, 0.52], replay_tokens=5)
    assert pacing == MeasuredPacing(ttft_ms=120.0, tokens_per_second=10.0, jitter=0.0)


def test_the_rate_is_in_the_replays_tokens_so_the_replay_lasts_as_long() -> None:
    """Three upstream events carrying nine of the replay's tokens in one second: 8 tokens a second."""
    assert measure_pacing([0.2, 0.7, 1.2], replay_tokens=9).tokens_per_second == 8.0  # type: ignore[union-attr]


def test_jitter_is_the_mocks_parameter_that_gives_the_measured_spread() -> None:
    gaps = [0.05, 0.15, 0.05, 0.15]  # mean 0.1, standard deviation 0.05
    times = [0.1]
    for gap in gaps:
        times.append(times[-1] + gap)
    assert measure_pacing(times, 5).jitter == round(math.sqrt(3) * 0.5, 2)  # type: ignore[union-attr]
    bursty = [0.1, 0.1, 0.1, 0.1, 2.0]
    assert measure_pacing(bursty, 5).jitter == 0.99  # type: ignore[union-attr]


def test_measured_pacing_stays_within_what_the_server_accepts() -> None:
    assert measure_pacing([0.001, 0.003], 100_000) == MeasuredPacing(1.0, 1_000_000.0, None)
    assert measure_pacing([900.0, 1000.0], 2) == MeasuredPacing(600_000.0, 0.1, None)


def test_what_one_event_cannot_tell_is_left_to_the_server() -> None:
    assert measure_pacing([0.25], 1) == MeasuredPacing(250.0, None, None)
    assert measure_pacing([], 3) is None


def test_pacing_is_the_running_mean_of_the_streamed_replies() -> None:
    first = merge_pacing(None, 0, MeasuredPacing(100.0, 40.0, 0.1))
    assert first == {"ttft_ms": 100, "tokens_per_second": 40.0, "jitter": 0.1}
    assert merge_pacing(first, 1, MeasuredPacing(200.0, 60.0, None)) == {
        "ttft_ms": 150,
        "tokens_per_second": 50.0,
        "jitter": 0.1,
    }
    assert merge_pacing(first, 1, None) == first


# -- upstream errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, documented", [(429, 429), (500, 500), (503, 503), (502, 503), (504, 503), (501, 500), (599, 500)]
)
def test_error_statuses_become_the_ones_the_contract_documents(status: int, documented: int) -> None:
    assert documented_status(status) == documented
    assert error_fault(status, {})["status"] == documented


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"retry-after": "2"}, 2),
        ({"retry-after": "1.2"}, 2),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}, 20),
        ({"retry-after-ms": "1500"}, 2),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_in_whole_seconds(headers: dict[str, str], seconds: int | None) -> None:
    assert retry_after_seconds(headers, now=10.0) == seconds
    fault = error_fault(429, headers, now=10.0)
    assert fault.get("retry_after") == seconds


def test_a_refusal_of_the_request_is_not_recorded() -> None:
    capture = Capture({"messages": [USER]}, 401, body=b'{"error": {"message": "Incorrect API key"}}')
    with pytest.raises(NotRecordable, match="HTTP 401: Incorrect API key"):
        recorded_turn(capture)


def _stream_of(turn: AssistantTurn, keep: int | None = None, done: bool = True) -> Capture:
    """A capture of the mock's own stream for ``turn``, cut after ``keep`` chunks, 20 ms apart."""
    chunks = render_chunks(
        turn,
        ReplyIdentity("chatcmpl-test", 1, "gpt-4o"),
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    )
    events = [SSEEvent(chunk.encode().decode().removeprefix("data: ").rstrip("\n")) for chunk in chunks[:keep]]
    if done and keep is None:
        events.append(SSEEvent("[DONE]"))
    return Capture(
        {"model": "gpt-4o", "messages": [USER]},
        200,
        stream=True,
        arrivals=[(0.1 + 0.02 * i, event) for i, event in enumerate(events)],
        done=done and keep is None,
        dropped=keep is not None,
    )


def test_a_dropped_stream_replays_what_arrived_then_drops() -> None:
    turn = AssistantTurn(content="It is sunny and warm in Paris today.")
    recorded = recorded_turn(_stream_of(turn, keep=5))
    assert recorded.message["content"] == "It is sunny and"
    assert recorded.message["fault"] == {"type": "disconnect", "after_chunks": 5}
    assert "usage" not in recorded.message


def test_a_stream_without_done_is_a_no_done_fault() -> None:
    recorded = recorded_turn(_stream_of(AssistantTurn(content="Sunny."), done=False))
    assert recorded.message["fault"] == {"type": "no_done"} and recorded.message["content"] == "Sunny."


def test_a_dropped_stream_keeps_only_whole_tool_calls() -> None:
    turn = AssistantTurn(
        tool_calls=(
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}},
        )
    )
    whole = len(render_chunks(turn, ReplyIdentity("c", 1, "m"), {}))
    recorded = recorded_turn(_stream_of(turn, keep=whole - 4))  # the second call's arguments are cut
    assert [call["id"] for call in recorded.message["tool_calls"]] == ["call_a"]


def test_a_stream_that_said_nothing_is_not_recorded() -> None:
    with pytest.raises(NotRecordable, match="says nothing"):
        recorded_turn(_stream_of(AssistantTurn(content="Hello there."), keep=1))


# -- the store --------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, validator: ContractValidator) -> ConversationStore:
    return ConversationStore(tmp_path / "recorded", validator, "http://127.0.0.1:9/v1")


def _turn(**message: Any) -> Any:
    from mockserver.recording.capture import RecordedTurn

    return RecordedTurn({"role": "assistant", **message}, pacing=MeasuredPacing(100.0, 50.0, 0.2))


def _loads(path: Path, validator: ContractValidator) -> Any:
    fixture = load_fixture_file(path)
    check_fixture(fixture, validator)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def test_a_later_turn_extends_its_conversations_file(store: ConversationStore, validator: ContractValidator) -> None:
    first = store.record({"model": "gpt-4o", "messages": [USER]}, _turn(tool_calls=[CALL]))
    assert first.action == "new" and first.path.name.startswith("what-is-the-weather-in-paris-")
    echoed = {"role": "assistant", "content": None, "tool_calls": [CALL], "refusal": None}
    tool = {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'}
    second = store.record({"model": "gpt-4o", "messages": [USER, echoed, tool]}, _turn(content="18 °C."))
    assert (second.path, second.action, second.turn_index) == (first.path, "extended", 3)
    data = _loads(first.path, validator)
    assert [m["role"] for m in data["conversation"]] == ["user", "assistant", "tool", "assistant"]
    assert data["match"] == {"model": "gpt-4o"} and data["description"].startswith(RECORDED_BY)
    assert data["stream"] == {"ttft_ms": 100, "tokens_per_second": 50.0, "jitter": 0.2}
    assert "2 streamed replies" in data["description"]
    assert len(list(store.folder.glob("*.yaml"))) == 1


def test_a_new_store_finds_the_files_an_earlier_recording_wrote(
    store: ConversationStore, validator: ContractValidator
) -> None:
    first = store.record({"model": "gpt-4o", "messages": [USER]}, _turn(content="Sunny."))
    later = ConversationStore(store.folder, validator)
    echoed = {"role": "assistant", "content": "Sunny."}
    again = later.record(
        {"model": "gpt-4o", "messages": [USER, echoed, {"role": "user", "content": "And Rome?"}]},
        _turn(content="Rainy."),
    )
    assert (again.path, again.action) == (first.path, "extended")


def test_other_conversations_and_models_get_their_own_files(store: ConversationStore) -> None:
    paris = store.record({"model": "gpt-4o", "messages": [USER]}, _turn(content="Sunny."))
    other_model = store.record({"model": "gpt-4o-mini", "messages": [USER]}, _turn(content="Sunny."))
    fork = store.record(
        {
            "model": "gpt-4o",
            "messages": [USER, {"role": "assistant", "content": "Cloudy."}, {"role": "user", "content": "Sure?"}],
        },
        _turn(content="Yes."),
    )
    assert len({paris.path, other_model.path, fork.path}) == 3 and fork.action == "new"


def test_an_answer_recorded_again_replaces_the_old_one(store: ConversationStore, validator: ContractValidator) -> None:
    first = store.record({"model": "gpt-4o", "messages": [USER]}, _turn(content="Sunny."))
    store.record(
        {
            "model": "gpt-4o",
            "messages": [USER, {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "Thanks!"}],
        },
        _turn(content="Welcome."),
    )
    again = store.record({"model": "gpt-4o", "messages": [USER]}, _turn(content="Cloudy."))
    assert (again.path, again.action) == (first.path, "replaced")
    data = _loads(first.path, validator)
    # The turns after the old answer continued "Sunny.", so they go with it.
    assert [m.get("content") for m in data["conversation"]] == [USER["content"], "Cloudy."]


def test_a_retry_after_a_fault_keeps_the_fault_then_the_reply(
    store: ConversationStore, validator: ContractValidator
) -> None:
    first = store.record(
        {"model": "gpt-4o", "messages": [USER]}, _turn(fault={"type": "http_error", "status": 429, "retry_after": 1})
    )
    retried = store.record({"model": "gpt-4o", "messages": [USER]}, _turn(content="Sunny."))
    assert (retried.path, retried.action) == (first.path, "retried")
    data = _loads(first.path, validator)
    assert data["conversation"][1] == {
        "role": "assistant",
        "replies": [{"fault": {"type": "http_error", "status": 429, "retry_after": 1}}, {"content": "Sunny."}],
    }
    assert retried.fixture.scenarios[1].step_at(0).fault is not None
    assert retried.fixture.scenarios[1].step_at(1).content == "Sunny."
    follow = store.record(
        {
            "model": "gpt-4o",
            "messages": [USER, {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "Thanks!"}],
        },
        _turn(content="Welcome."),
    )
    assert (follow.path, follow.action) == (first.path, "extended")


def test_a_file_of_someone_elses_is_never_overwritten(tmp_path: Path, validator: ContractValidator) -> None:
    probe = ConversationStore(tmp_path / "probe", validator).record(
        {"model": "gpt-4o", "messages": [USER]}, _turn(content="Sunny.")
    )
    folder = tmp_path / "mine"
    folder.mkdir()
    hand_written = "conversation:\n  - {role: user, content: Hi}\n  - {role: assistant, content: Hello}\n"
    (folder / probe.path.name).write_text(hand_written, encoding="utf-8")
    written = ConversationStore(folder, validator).record(
        {"model": "gpt-4o", "messages": [USER]}, _turn(content="Sunny.")
    )
    assert written.path.name != probe.path.name and written.path.stem.endswith("-2")
    assert (folder / probe.path.name).read_text(encoding="utf-8") == hand_written
    assert len(load_fixtures(folder)) == 2


def test_secrets_are_scrubbed_from_everything_written(store: ConversationStore) -> None:
    key = "sk-proj-SECRET-abcdef0123456789"
    written = store.record(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": f"My key is {key}"}]},
        _turn(content=f"Got it: {key}"),
        secrets=[f"Bearer {key}"],
    )
    text = written.path.read_text(encoding="utf-8")
    assert key not in text and text.count("[redacted]") == 2


def test_a_conversation_that_would_not_load_is_not_written(store: ConversationStore) -> None:
    with pytest.raises(NotWritten, match="arguments"):
        store.record(
            {"model": "gpt-4o", "messages": [USER]},
            _turn(tool_calls=[{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]),
        )
    assert not list(store.folder.iterdir())


def test_request_messages_keep_only_what_the_format_takes(
    store: ConversationStore, validator: ContractValidator
) -> None:
    messages = [
        {"role": "system", "content": "Be brief.", "extra": 1},
        {"role": "user", "content": [{"type": "text", "text": "Describe this."}], "name": "ann"},
    ]
    written = store.record({"model": "gpt-4o", "messages": messages}, _turn(content="Brief."))
    data = _loads(written.path, validator)
    assert data["conversation"][:2] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Describe this."}], "name": "ann"},
    ]


# -- the upstream and its headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, base, shown",
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/v1", "http://127.0.0.1:9000/v1"),
        ("http://127.0.0.1:9000/v1/", "http://127.0.0.1:9000/v1", "http://127.0.0.1:9000/v1"),
        (
            "https://user:pw@api.example.com/openai/v1?key=abc",
            "https://user:pw@api.example.com/openai/v1?key=abc",
            "https://api.example.com/openai/v1",
        ),
    ],
)
def test_upstream_urls(url: str, base: str, shown: str) -> None:
    upstream = Upstream.parse(url)
    assert (upstream.base_url, upstream.display) == (base, shown)
    assert upstream.endpoint.split("?")[0] == base.split("?")[0] + "/chat/completions"


@pytest.mark.parametrize("url", ["ftp://host", "127.0.0.1:8000", "http://", "http://host:99999", "http://h/v1#x"])
def test_bad_upstream_urls(url: str) -> None:
    with pytest.raises(ValueError, match="^--upstream: "):
        Upstream.parse(url)


def test_headers_and_the_key_from_the_environment() -> None:
    assert parse_header("X-Org:  acme ") == ("X-Org", "acme")
    assert upstream_headers([], {"OPENAI_API_KEY": "sk-env"}) == [("Authorization", "Bearer sk-env")]
    assert upstream_headers(["Authorization: Bearer sk-flag"], {"OPENAI_API_KEY": "sk-env"}) == [
        ("Authorization", "Bearer sk-flag")
    ]
    for bad in ("sk-no-colon-SECRET", "bad name: x", "Host: elsewhere"):
        with pytest.raises(ValueError, match="^--header: ") as error:
            parse_header(bad)
        assert "SECRET" not in str(error.value)
