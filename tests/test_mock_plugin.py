"""The pytest plugin, run the way a user's project runs it (pytester)."""

from __future__ import annotations

import pytest
from mock_helpers import CONVERSATIONS, plugin_args

pytest_plugins = ["pytester"]
PLUGIN = plugin_args("chatstream-mock", "mockserver.pytest_plugin")  # loads the plugin in inner pytest runs

USER_TEST = '''
from openai import OpenAI


def test_fixture_from_the_folder(mockserver):
    client = OpenAI(base_url=mockserver.url, api_key="test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o", stream=True,
                                            messages=[{"role": "user", "content": "Say hello."}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \\
        "Hello! How can I help you today?"
    assert mockserver.requests[-1]["fixture"] == "hello"
    assert mockserver.requests[-1]["headers"]["authorization"] == "[redacted]"


def test_conversation_added_from_the_test(mockserver):
    name = mockserver.add_conversation("""
name: greeting-in-french
conversation:
  - {role: user, content: {contains: "in French"}}
  - {role: assistant, content: "Bonjour !"}
""")
    assert name == "greeting-in-french"
    mockserver.clear()
    client = OpenAI(base_url=mockserver.url, api_key="test", max_retries=0)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Greet me in French."}],
                                           stream=False)
    assert reply.choices[0].message.content == "Bonjour !"
    assert [entry["fixture"] for entry in mockserver.requests] == ["greeting-in-french"]
    assert mockserver.base_url + "/v1" == mockserver.url
'''


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    folder = pytester.mkdir("conversations")
    (folder / "hello.yaml").write_text(CONVERSATIONS["hello.yaml"], encoding="utf-8")
    pytester.makepyfile(test_with_mock=USER_TEST)
    return pytester


def test_fixture_folder_from_the_ini_option(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nmockserver_fixtures = conversations\n")
    result = project.runpytest(*PLUGIN, "-q")
    result.assert_outcomes(passed=2)


def test_fixture_folder_from_the_command_line(project: pytest.Pytester) -> None:
    result = project.runpytest(*PLUGIN, "--mockserver-fixtures", str(project.path / "conversations"), "-q")
    result.assert_outcomes(passed=2)


def test_broken_folder_fails_the_fixture_with_one_line(project: pytest.Pytester) -> None:
    (project.path / "conversations" / "bad.yaml").write_text("conversation: []\n", encoding="utf-8")
    result = project.runpytest(*PLUGIN, "--mockserver-fixtures", "conversations", "-q")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*mockserver: *bad.yaml:1: conversation must be a non-empty list*"])


# -- isolation: each test sees a clean server ------------------------------------------------------------

ORDER_DEPENDENT = '''
import httpx
from openai import OpenAI

ADDED = """
name: only-in-one-test
conversation:
  - {role: user, content: "Who added you?"}
  - {role: assistant, content: "test_adds."}
"""


def ask(mockserver, content, **options):
    client = OpenAI(base_url=mockserver.url, api_key="test", **options)
    return client.chat.completions.create(model="gpt-4o", stream=False,
                                          messages=[{"role": "user", "content": content}])


def test_adds(mockserver):
    assert mockserver.requests == []
    mockserver.add_conversation(ADDED)
    assert ask(mockserver, "Who added you?").choices[0].message.content == "test_adds."
    assert mockserver.matches == [("only-in-one-test", 1)]


def test_does_not_see_what_another_test_added(mockserver):
    assert mockserver.requests == []
    assert "only-in-one-test" not in [item["name"] for item in mockserver.fixtures]
    response = httpx.post(mockserver.url + "/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "Who added you?"}]})
    assert response.json()["error"]["code"] == "no_fixture_match"
    assert mockserver.last_request["status"] == 400


def test_scenario_starts_at_its_first_reply(mockserver):
    response = httpx.post(mockserver.url + "/chat/completions", json={
        "model": "m", "stream": False, "messages": [{"role": "user", "content": "Flaky?"}]})
    assert response.status_code == 503
    assert ask(mockserver, "Flaky?").choices[0].message.content == "Recovered."
    assert [entry["play"] for entry in mockserver.requests] == [1, 2]


def test_removes_a_folder_conversation(mockserver):
    mockserver.remove_conversation("hello")
    assert "hello" not in [item["name"] for item in mockserver.fixtures]


def test_still_has_the_folder_conversation(mockserver):
    assert ask(mockserver, "Say hello.").choices[0].message.content == "Hello! How can I help you today?"
    assert {item["name"]: item["hits"] for item in mockserver.fixtures} == {"hello": 1, "flaky": 0}
'''

FLAKY = """\
conversation:
  - {role: user, content: "Flaky?"}
  - role: assistant
    content: "Recovered."
    fault: {type: http_error, status: 503, retry_after_ms: 1, times: 1}
"""

TESTS = [
    "test_adds",
    "test_does_not_see_what_another_test_added",
    "test_scenario_starts_at_its_first_reply",
    "test_removes_a_folder_conversation",
    "test_still_has_the_folder_conversation",
]


@pytest.fixture()
def isolated(pytester: pytest.Pytester) -> pytest.Pytester:
    folder = pytester.mkdir("conversations")
    (folder / "hello.yaml").write_text(CONVERSATIONS["hello.yaml"], encoding="utf-8")
    (folder / "flaky.yaml").write_text(FLAKY, encoding="utf-8")
    pytester.makeini("[pytest]\nmockserver_fixtures = conversations\n")
    pytester.makepyfile(test_order=ORDER_DEPENDENT)
    return pytester


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_tests_pass_in_any_order(isolated: pytest.Pytester, order: str) -> None:
    names = TESTS if order == "forward" else TESTS[::-1]
    result = isolated.runpytest(*PLUGIN, "-p", "no:randomly", "-q", *(f"test_order.py::{n}" for n in names))
    result.assert_outcomes(passed=len(TESTS))


@pytest.mark.slow
def test_tests_pass_under_xdist(isolated: pytest.Pytester) -> None:
    result = isolated.runpytest_subprocess(*PLUGIN, "-p", "no:randomly", "-n", "2", "-q")
    result.assert_outcomes(passed=len(TESTS))


# -- servers of a test's own, and the helpers ---------------------------------------------------------------

FACTORY_TEST = """
import socket
import time

import httpx
import pytest
from openai import OpenAI

PORTS = []


def test_a_paced_server_of_its_own(mockserver, mockserver_factory):
    paced = mockserver_factory(pacing={"ttft_ms": 300, "tokens_per_second": 1000, "jitter": 0},
                               conversations=[{"name": "slow", "conversation": [
                                   {"role": "user", "content": "Slowly."}, {"role": "assistant", "content": "Done."}]}])
    assert paced.url != mockserver.url
    PORTS.append(httpx.URL(paced.url).port)
    client = OpenAI(base_url=paced.url, api_key="test", max_retries=0)
    started = time.monotonic()
    stream = client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "Slowly."}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Done." and time.monotonic() - started >= 0.28
    assert paced.last_request["fixture"] == "slow" and mockserver.requests == []


def test_the_factory_server_stopped_with_the_test():
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", PORTS[0])) != 0


def test_a_faulty_server_from_another_folder(mockserver_factory, tmp_path):
    (tmp_path / "one.yaml").write_text(
        'conversation:\\n  - {role: user, content: "One?"}\\n  - {role: assistant, content: "One."}\\n')
    faulty = mockserver_factory(tmp_path, fault_rate=1.0, fault_types=["http_error"], seed=3)
    response = httpx.post(faulty.url + "/chat/completions",
                          json={"model": "m", "messages": [{"role": "user", "content": "One?"}]})
    assert response.status_code in (429, 500, 503)
    assert [item["name"] for item in faulty.fixtures] == ["one"]


def test_a_broken_folder_fails_with_one_line(mockserver_factory, tmp_path):
    (tmp_path / "bad.yaml").write_text("conversation: []\\n")
    mockserver_factory(tmp_path)


def test_a_failure_shows_what_the_server_received(mockserver):
    httpx.post(mockserver.url + "/chat/completions",
               json={"model": "m", "messages": [{"role": "user", "content": "Say hello."}]})
    assert mockserver.last_request["fixture"] == "nothing"


def test_last_request_without_requests_says_so(mockserver):
    with pytest.raises(AssertionError, match="received no request"):
        mockserver.last_request
"""


def test_the_factory_and_the_helpers(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("conversations")
    (folder / "hello.yaml").write_text(CONVERSATIONS["hello.yaml"], encoding="utf-8")
    pytester.makeini("[pytest]\nmockserver_fixtures = conversations\n")
    pytester.makepyfile(test_factory=FACTORY_TEST)
    result = pytester.runpytest(*PLUGIN, "-p", "no:randomly", "-q")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_a_broken_folder_fails_with_one_line*",
            "*mockserver: *bad.yaml:1: conversation must be a non-empty list*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*- mockserver requests -*",
            '1. POST /v1/chat/completions -> 200  hello turn 1 play 1  last message "Say hello."',
        ]
    )
