"""Scenarios: one request, different answers in sequence; with the official SDK's own retries."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mock_helpers import STREAM_DROPPED, MockServers, RunningMock, ask, read_stream
from openai import OpenAI

from mockserver.app import create_app
from mockserver.fixtures import FixtureError, fixture_from_dict, load_fixture_file
from mockserver.scenario import CYCLE, Scenario, Step
from mockserver.turns import AssistantTurn

URL = "/v1/chat/completions"
ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {
    "flaky.yaml": """\
        conversation:
          - {role: user, content: "Are you there?"}
          - role: assistant
            content: "Yes, at last."
            fault: {type: http_error, status: 503, retry_after_ms: 10, times: 2}
        """,
    "throttled.yaml": """\
        conversation:
          - {role: user, content: "Rate-limit me once."}
          - role: assistant
            replies:
              - fault: {type: http_error, status: 429, retry_after_ms: 10}
              - content: "Here you go."
        """,
    "alternating.yaml": """\
        conversation:
          - {role: user, content: "Heads or tails?"}
          - role: assistant
            replies:
              - content: "Heads."
              - content: "Tails."
            then: cycle
        """,
    "dropped-json.yaml": """\
        conversation:
          - {role: user, content: "Drop my JSON once."}
          - role: assistant
            content: "Complete this time."
            fault: {type: disconnect, times: 1}
        """,
    "dropped-stream.yaml": """\
        conversation:
          - {role: user, content: "Drop my stream once."}
          - role: assistant
            content: "The whole answer, streamed to the end on the second try."
            fault: {type: disconnect, after_chunks: 3, times: 1}
        """,
    "follow-up.yaml": """\
        conversation:
          - {role: user, content: "Start."}
          - role: assistant
            replies:
              - {content: "Working on it.", fault: {type: disconnect, after_chunks: 1}}
              - content: "Started."
          - {role: user, content: "Next."}
          - {role: assistant, content: "Done."}
        """,
    "hello.yaml": """\
        conversation:
          - {role: user, content: "Say hello."}
          - {role: assistant, content: "Hello!"}
        """,
}


def write_scenarios(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SCENARIOS.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    return module_mock_server_factory(write_scenarios(tmp_path_factory.mktemp("scenarios")), no_delay=True)


@pytest.fixture()
def http(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def sdk(server: RunningMock, **options: Any) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key="test", **options)


def statuses(http: httpx.Client) -> list[tuple[int, int | None]]:
    return [(entry["status"], entry["play"]) for entry in http.get("/__mock/requests").json()["requests"]]


# -- the rule from play count to reply -------------------------------------------------------------------


def test_steps_play_in_order_then_repeat_the_last_or_cycle() -> None:
    a, b, c = (AssistantTurn(content=text) for text in "abc")
    steps = (Step(a, times=2), Step(b), Step(c))
    assert [Scenario(steps).step_at(n).content for n in range(7)] == list("aabcccc")
    assert [Scenario(steps, CYCLE).step_at(n).content for n in range(9)] == list("aabcaabca")
    with pytest.raises(ValueError, match="then must be one of"):
        Scenario(steps, "forever")


# -- the fixture syntax -------------------------------------------------------------------------------------


def test_fault_times_is_two_steps_and_replies_keep_each_steps_line(tmp_path: Path) -> None:
    folder = write_scenarios(tmp_path)
    flaky = load_fixture_file(folder / "flaky.yaml")
    steps = flaky.scenarios[1].steps
    assert [(step.times, step.turn.fault) for step in steps] == [
        (2, {"type": "http_error", "status": 503, "retry_after_ms": 10}),
        (1, None),
    ]
    assert steps[0].turn.content == steps[1].turn.content == "Yes, at last."
    throttled = load_fixture_file(folder / "throttled.yaml")
    assert [step.turn.source for step in throttled.scenarios[1].steps] == [
        f"{folder / 'throttled.yaml'}:5",
        f"{folder / 'throttled.yaml'}:6",
    ]
    assert throttled.turns[1] is throttled.scenarios[1].steps[0].turn, "turns[i] is the first reply"
    assert throttled.conversation[1] == {"role": "assistant", "content": "Here you go."}, (
        "a client sends back the last reply that says something"
    )
    assert load_fixture_file(folder / "hello.yaml").scenarios == {}


BAD_SCENARIOS = {
    "replies not a list": ("replies: {content: hi}", 4, "replies must be a non-empty list"),
    "replies empty": ("replies: []", 4, "replies must be a non-empty list"),
    "reply not a mapping": ("replies:\n      - hello", 5, "reply 1 must be a mapping"),
    "unknown key in a reply": (
        "replies:\n      - {contnet: hi}",
        5,
        "unknown key 'contnet' in a reply; did you mean 'content'?",
    ),
    "content beside replies": (
        "content: hi\n    replies:\n      - {content: hi}",
        4,
        "'content' belongs inside each entry of this turn's replies",
    ),
    "then without replies": ("content: hi\n    then: cycle", 5, "then says what plays after the last"),
    "unknown then": ("replies:\n      - {content: hi}\n    then: forever", 6, "then must be one of repeat-last, cycle"),
    "times zero": (
        "content: hi\n    fault: {type: http_error, times: 0}",
        5,
        "fault.times must be a whole number, 1 or more",
    ),
    "times text": ("content: hi\n    fault:\n      type: http_error\n      times: '2'", 7, 'got "2"'),
    "times fraction": ("content: hi\n    fault: {type: disconnect, times: 1.5}", 5, "got 1.5"),
    "times boolean": ("content: hi\n    fault: {type: disconnect, times: true}", 5, "got true"),
    "times with nothing to say": (
        "fault: {type: http_error, status: 429, times: 1}",
        4,
        "after the fault's 1 time(s) this reply plays, so it needs content",
    ),
    "empty reply": (
        "replies:\n      - {fault: {type: http_error}}\n      - {finish_reason: stop}",
        6,
        "assistant turn (reply 2) has nothing to say",
    ),
    "bad fault key in a reply": (
        "replies:\n      - fault:\n          type: http_error\n          retry: 1\n      - {content: hi}",
        7,
        "unknown key 'retry'",
    ),
    "bad status in a reply": (
        "replies:\n      - fault:\n          type: http_error\n          status: 302\n      - {content: hi}",
        7,
        "status 302 is not a documented error status",
    ),
    "both waits": (
        "content: hi\n    fault: {type: http_error, retry_after: 1, retry_after_ms: 5}",
        5,
        "give retry_after (seconds) or retry_after_ms, not both",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SCENARIOS))
def test_a_bad_scenario_names_file_line_and_problem(tmp_path: Path, case: str) -> None:
    turn, line, problem = BAD_SCENARIOS[case]
    path = tmp_path / "bad.yaml"
    path.write_text(
        "conversation:\n  - {role: user, content: hi}\n  - role: assistant\n    " + turn + "\n", encoding="utf-8"
    )
    with pytest.raises(FixtureError) as caught:
        load_fixture_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ") and problem in message, message
    assert "\n" not in message


def test_every_reply_of_a_scenario_is_checked_against_the_contract_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "bad-usage.yaml").write_text(
        textwrap.dedent("""\
        conversation:
          - {role: user, content: hi}
          - role: assistant
            replies:
              - content: "first"
              - content: "second"
                usage: {prompt_tokens: 1, completion_tokens: 1, total_tokens: 5}
        """),
        encoding="utf-8",
    )
    with pytest.raises(FixtureError, match=r"bad-usage\.yaml:\d+: usage\.total_tokens is 5"):
        create_app(tmp_path)
    (tmp_path / "bad-usage.yaml").unlink()
    (tmp_path / "no-multibyte.yaml").write_text(
        textwrap.dedent("""\
        conversation:
          - {role: user, content: hi}
          - role: assistant
            replies:
              - content: "plain"
              - {content: "still plain", fault: {type: split_utf8}}
        """),
        encoding="utf-8",
    )
    with pytest.raises(FixtureError, match=r"no-multibyte\.yaml:6: split_utf8 needs a character outside ASCII"):
        create_app(tmp_path)


def test_scenarios_from_python_name_the_key_path() -> None:
    with pytest.raises(FixtureError, match=r"^<python>: conversation\[1\]\.replies\[0\]\.fault\.times: "):
        fixture_from_dict(
            {
                "conversation": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "replies": [{"content": "a", "fault": {"type": "disconnect", "times": -1}}]},
                ]
            }
        )


# -- on the wire --------------------------------------------------------------------------------------------


def test_503_twice_then_success_and_the_journal_counts_plays(http: httpx.Client, validator: Any) -> None:
    answers = [http.post(URL, json=ask("Are you there?", stream=False)) for _ in range(4)]
    assert [r.status_code for r in answers] == [503, 503, 200, 200]
    assert validator.validate_response(503, answers[0].json()) == []
    assert answers[0].headers["retry-after-ms"] == "10" and answers[0].headers["retry-after"] == "1"
    assert answers[2].json()["choices"][0]["message"]["content"] == "Yes, at last."
    assert statuses(http) == [(503, 1), (503, 2), (200, 3), (200, 4)]
    assert http.get("/__mock/requests").json()["requests"][0]["fault"] == "http_error; status=503; retry_after_ms=10"


def test_each_reply_names_its_own_line_and_cycle_starts_over(http: httpx.Client) -> None:
    replies = [http.post(URL, json=ask("Heads or tails?", stream=False)) for _ in range(5)]
    assert [r.json()["choices"][0]["message"]["content"] for r in replies] == [
        "Heads.",
        "Tails.",
        "Heads.",
        "Tails.",
        "Heads.",
    ]
    assert [r.headers["x-mock-fixture"].rsplit(":", 1)[1] for r in replies[:2]] == ["5)", "6)"]


def test_reset_starts_every_scenario_again(http: httpx.Client) -> None:
    assert http.post(URL, json=ask("Rate-limit me once.")).status_code == 429
    assert http.post(URL, json=ask("Rate-limit me once.")).status_code == 200
    assert http.post("/__mock/reset").json()["reset"] is True
    assert http.post(URL, json=ask("Rate-limit me once.")).status_code == 429
    assert statuses(http) == [(429, 1)], "the journal was emptied too"


def test_a_later_turn_follows_the_last_reply_of_a_scenario(http: httpx.Client) -> None:
    first = read_stream(http, URL, ask("Start."))
    assert isinstance(first.error, httpx.RemoteProtocolError)
    second = read_stream(http, URL, ask("Start."))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in second.chunks if c["choices"]) == "Started."
    body = {
        "model": "m",
        "stream": False,
        "messages": [
            {"role": "user", "content": "Start."},
            {"role": "assistant", "content": "Started."},
            {"role": "user", "content": "Next."},
        ],
    }
    assert http.post(URL, json=body).json()["choices"][0]["message"]["content"] == "Done."


# -- the official SDK, retrying on its own -------------------------------------------------------------------


def test_the_sdk_retries_a_429_and_gets_the_reply(server: RunningMock, http: httpx.Client) -> None:
    started = time.monotonic()
    reply = sdk(server).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Rate-limit me once."}], stream=False
    )
    assert reply.choices[0].message.content == "Here you go."
    assert time.monotonic() - started < 5, "retry-after-ms: 10 keeps the retry quick"
    entries = http.get("/__mock/requests").json()["requests"]
    assert [(e["status"], e["headers"].get("x-stainless-retry-count")) for e in entries] == [(429, "0"), (200, "1")]


def test_the_sdk_rides_out_two_503s_in_a_stream(server: RunningMock, http: httpx.Client) -> None:
    stream = sdk(server).chat.completions.create(
        model="gpt-4o", stream=True, messages=[{"role": "user", "content": "Are you there?"}]
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Yes, at last."
    assert statuses(http) == [(503, 1), (503, 2), (200, 3)]


def test_with_fewer_retries_than_failures_the_sdk_gives_up(server: RunningMock, http: httpx.Client) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(server, max_retries=1).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Are you there?"}], stream=False
        )
    assert caught.value.status_code == 503
    assert statuses(http) == [(503, 1), (503, 2)]


def test_the_sdk_retries_a_dropped_json_reply_by_itself(server: RunningMock, http: httpx.Client) -> None:
    reply = sdk(server).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Drop my JSON once."}], stream=False
    )
    assert reply.choices[0].message.content == "Complete this time."
    assert [e["fault"] for e in http.get("/__mock/requests").json()["requests"]] == ["disconnect; after_chunks=0", None]


def ask_until_complete(client: OpenAI, content: str, attempts: int = 3) -> str:
    """What a client does about a dropped stream: the SDK does not retry one that started, so ask again."""
    for attempt in range(attempts):
        try:
            stream = client.chat.completions.create(
                model="gpt-4o", stream=True, messages=[{"role": "user", "content": content}]
            )
            return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        except STREAM_DROPPED:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def test_a_dropped_stream_is_caught_and_asked_again(server: RunningMock, http: httpx.Client) -> None:
    client = sdk(server)
    with pytest.raises(STREAM_DROPPED):
        for _ in client.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "Drop my stream once."}]
        ):
            pass
    http.post("/__mock/reset")
    text = ask_until_complete(client, "Drop my stream once.")
    assert text == "The whole answer, streamed to the end on the second try."
    assert statuses(http) == [(200, 1), (200, 2)], "both streams started with 200; the first one dropped"


def test_the_bundled_rate_limit_scenario_with_the_sdk(mock_server_factory: MockServers) -> None:
    with (
        mock_server_factory(None, no_delay=True) as running,
        httpx.Client(base_url=running.url, timeout=10) as http,
    ):
        started = time.monotonic()
        reply = sdk(running).chat.completions.create(
            model="gpt-4o", stream=False, messages=[{"role": "user", "content": "simulate a rate limit, then answer"}]
        )
        waited = time.monotonic() - started
        assert reply.choices[0].message.content == "Thanks for waiting: this is the answer after the retry."
        assert 0.9 <= waited < 10, "the SDK waited for Retry-After: 1"
        assert (
            ask_until_complete(sdk(running), "simulate a dropped stream, then answer")
            == "This answer comes through whole the second time it is asked for."
        )
        entries = http.get("/__mock/requests").json()["requests"]
        assert [(e["fixture"], e["status"], e["play"]) for e in entries] == [
            ("rate-limit-then-reply", 429, 1),
            ("rate-limit-then-reply", 200, 2),
            ("drop-then-reply", 200, 1),
            ("drop-then-reply", 200, 2),
        ]


# -- X-Mock-Fault with a count ----------------------------------------------------------------------------------


def test_a_header_fault_with_times_fails_only_the_first_requests(server: RunningMock, http: httpx.Client) -> None:
    client = sdk(server)
    header = {"X-Mock-Fault": "http_error; status=503; retry_after_ms=5; times=2"}
    reply = client.chat.completions.create(
        model="gpt-4o", stream=False, extra_headers=header, messages=[{"role": "user", "content": "Say hello."}]
    )
    assert reply.choices[0].message.content == "Hello!"
    entries = http.get("/__mock/requests").json()["requests"]
    assert [e["status"] for e in entries] == [503, 503, 200]
    assert entries[0]["fault"] == "http_error; status=503; retry_after_ms=5; times=2" and entries[2]["fault"] is None
    again = http.post(URL, json=entries[0]["body"], headers=header)
    assert again.status_code == 200, "the count is spent until the next reset"
    other = http.post(URL, json={**entries[0]["body"], "temperature": 0.5}, headers=header)
    assert other.status_code == 503, "another body counts on its own"
    http.post("/__mock/reset")
    assert http.post(URL, json=entries[0]["body"], headers=header).status_code == 503


def test_a_header_fault_with_a_bad_count_is_refused(http: httpx.Client, validator: Any) -> None:
    for value in ("http_error; times=0", "disconnect; times=two", "http_error; times=1.5"):
        response = http.post(URL, json=ask("Say hello."), headers={"X-Mock-Fault": value})
        assert response.status_code == 400, value
        assert response.json()["error"]["code"] == "invalid_header" and "times" in response.json()["error"]["message"]
        assert validator.validate_response(400, response.json()) == []
