"""``mockserver --workers 2`` as a user runs it: whichever process answers, the state reads the same.

Each request goes on a fresh connection, so the kernel hands it to either
worker; the journal names the worker (its pid) that answered each one, and the
tests send until both have answered.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import ask, serving_cli
from test_mock_cli import assert_one_line_usage_error, run_cli

from mockserver.serve import free_port

ROOT = Path(__file__).resolve().parent.parent
CHAT = "/v1/chat/completions"
MOST_REQUESTS = 400  # a bound, never reached in practice: both workers answer within the first few dozen

CONVERSATIONS = {
    "knock.yaml": """\
        conversation:
          - {role: user, content: "Knock knock."}
          - role: assistant
            replies:
              - fault: {type: http_error, status: 429, retry_after_ms: 10}
              - content: "Who is there?"
            then: cycle
        """,
    "hello.yaml": """\
        conversation:
          - {role: user, content: "Say hello."}
          - {role: assistant, content: "Hello!"}
        """,
}
ADDED = {
    "name": "added",
    "conversation": [
        {"role": "user", "content": "Are you new?"},
        {"role": "assistant", "content": "Posted at run time."},
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The base URL of ``mockserver --workers 2`` and the pid of its supervisor."""
    folder = tmp_path_factory.mktemp("workers")
    for name, text in CONVERSATIONS.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    port = free_port()
    with serving_cli(
        "--fixtures",
        str(folder),
        "--port",
        str(port),
        "--no-delay",
        "--workers",
        "2",
        "--journal-size",
        "1000",
        "--allowed-host",
        "mock.internal",
        "--log-level",
        "warning",
        seconds=60,  # two spawned workers each load the contract: slow on a busy machine
    ) as cli:
        banner = cli.banner
        assert f"http://127.0.0.1:{port}/v1" in banner and "2 workers" in banner, banner
        url = f"http://127.0.0.1:{port}"
        yield url, cli.process.pid


@pytest.fixture()
def http(server: tuple[str, int]) -> Iterator[httpx.Client]:
    """A client that opens a fresh connection for every request, so any worker may answer it."""
    with httpx.Client(base_url=server[0], timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        client.post("/__mock/reset").raise_for_status()
        yield client


def journal(http: httpx.Client) -> list[dict[str, Any]]:
    return http.get("/__mock/requests").json()["requests"]


def send_until_both_workers_answer(http: httpx.Client, body: dict[str, Any]) -> list[httpx.Response]:
    """POST ``body`` in rounds of ten until the journal shows two workers answered it."""
    responses: list[httpx.Response] = []
    while len(responses) < MOST_REQUESTS:
        responses += [http.post(CHAT, json=body) for _ in range(10)]
        if len({entry["worker"] for entry in journal(http) if entry["body"] == body}) == 2:
            return responses
    raise AssertionError(f"one worker answered all {len(responses)} requests")


def test_a_scenario_plays_in_order_whichever_worker_answers(server: tuple[str, int], http: httpx.Client) -> None:
    knock = ask("Knock knock.", stream=False)
    responses = send_until_both_workers_answer(http, knock)
    assert [r.status_code for r in responses] == [429, 200] * (len(responses) // 2)
    entries = journal(http)
    assert len(entries) == len(responses), "every request is journaled once, by whichever worker answered it"
    assert [entry["play"] for entry in entries] == list(range(1, len(responses) + 1))
    workers = {entry["worker"] for entry in entries}
    assert len(workers) == 2 and server[1] not in workers, "two worker processes, neither the supervisor"
    summary = {f["name"]: f for f in http.get("/__mock/fixtures").json()["fixtures"]}
    assert summary["knock"]["hits"] == len(responses) and summary["hello"]["hits"] == 0


def test_request_numbers_and_header_faults_are_counted_once_across_workers(http: httpx.Client) -> None:
    hello = ask("Say hello.", stream=False)
    flaky = {"X-Mock-Fault": "http_error; status=503; times=3"}
    statuses = [http.post(CHAT, json=hello, headers=flaky).status_code for _ in range(8)]
    assert statuses == [503] * 3 + [200] * 5
    first_run = [r.json()["id"] for r in send_until_both_workers_answer(http, hello)]
    http.post("/__mock/reset").raise_for_status()
    again = [http.post(CHAT, json=hello, headers=flaky).status_code for _ in range(8)]
    assert again == statuses, "reset gives the header fault its uses back in every worker"
    second_run = [http.post(CHAT, json=hello).json()["id"] for _ in first_run]
    assert len(set(first_run)) == len(first_run), "no two requests were given the same number (and seed)"
    assert second_run == first_run, "request n gets the same reply whichever worker answers it"


def test_a_conversation_posted_to_one_worker_is_served_by_every_worker(http: httpx.Client) -> None:
    question = ask("Are you new?", stream=False)
    assert http.post(CHAT, json=question).status_code == 400
    assert http.post("/__mock/fixtures", json=ADDED).json() == {"name": "added", "replaced": False, "fixtures": 3}
    answers = send_until_both_workers_answer(http, question)
    assert {r.json()["choices"][0]["message"]["content"] for r in answers} == {"Posted at run time."}
    listed = [
        {f["name"]: (f["added"], f["hits"]) for f in http.get("/__mock/fixtures").json()["fixtures"]} for _ in range(6)
    ]
    assert all(summary["added"] == (True, len(answers)) for summary in listed)
    assert http.delete("/__mock/fixtures/added").status_code == 200
    http.delete("/__mock/requests").raise_for_status()
    gone = send_until_both_workers_answer(http, question)
    assert {r.json()["error"]["code"] for r in gone} == {"no_fixture_match"}


def test_reset_clears_every_worker(http: httpx.Client) -> None:
    http.post("/__mock/fixtures", json=ADDED).raise_for_status()
    send_until_both_workers_answer(http, ask("Knock knock.", stream=False))
    http.post("/__mock/reset").raise_for_status()
    for _ in range(6):  # fresh connections: both workers are asked
        assert journal(http) == []
        summary = {f["name"]: f["hits"] for f in http.get("/__mock/fixtures").json()["fixtures"]}
        assert summary == {"hello": 0, "knock": 0}
    statuses = [r.status_code for r in send_until_both_workers_answer(http, ask("Knock knock.", stream=False))]
    assert statuses[:2] == [429, 200], "the scenario starts again from its first reply"
    assert http.post(CHAT, json=ask("Are you new?", stream=False)).status_code == 400


@pytest.mark.parametrize(
    "args, words",
    [
        (["--workers", "0"], ["--workers", "at least 1", "got 0"]),
        (["--workers", "-2"], ["--workers", "at least 1", "got -2"]),
        (["--workers", "two"], ["--workers", "whole number", "'two'"]),
        (["--workers", "1.5"], ["--workers", "whole number", "'1.5'"]),
        (["--workers", "2", "--watch"], ["--watch", "one process", "--workers 2"]),
        (
            ["--workers", "3", "--record-missing", "--upstream", "http://127.0.0.1:9", "--fixtures", "."],
            ["--record-missing", "one process", "--workers 3"],
        ),
    ],
)
def test_bad_workers_values_are_one_line_and_exit_2(args: list[str], words: list[str]) -> None:
    assert_one_line_usage_error(run_cli(*args), *words)


def test_every_worker_serves_the_allowed_host_and_refuses_others(http: httpx.Client) -> None:
    """``--allowed-host`` reaches the spawned workers with the rest of the settings."""
    for _ in range(10):  # a fresh connection each time, so either worker may answer
        assert http.get("/__mock/requests", headers={"Host": "mock.internal"}).status_code == 200
        refused = http.get("/__mock/requests", headers={"Host": "rebind.attacker.example"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "host_not_allowed"
