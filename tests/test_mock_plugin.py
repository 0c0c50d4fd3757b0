"""The pytest plugin, run the way a user's project runs it (pytester)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from mock_helpers import CONVERSATIONS

pytest_plugins = ["pytester"]

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


def _plugin_args() -> list[str]:
    installed = any(ep.name == "chatstream-mock" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "mockserver.pytest_plugin"]


@pytest.fixture()
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    folder = pytester.mkdir("conversations")
    (folder / "hello.yaml").write_text(CONVERSATIONS["hello.yaml"], encoding="utf-8")
    pytester.makepyfile(test_with_mock=USER_TEST)
    return pytester


def test_fixture_folder_from_the_ini_option(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nmockserver_fixtures = conversations\n")
    result = project.runpytest(*_plugin_args(), "-q")
    result.assert_outcomes(passed=2)


def test_fixture_folder_from_the_command_line(project: pytest.Pytester) -> None:
    result = project.runpytest(*_plugin_args(), "--mockserver-fixtures", str(project.path / "conversations"), "-q")
    result.assert_outcomes(passed=2)


def test_broken_folder_fails_the_fixture_with_one_line(project: pytest.Pytester) -> None:
    (project.path / "conversations" / "bad.yaml").write_text("conversation: []\n", encoding="utf-8")
    result = project.runpytest(*_plugin_args(), "--mockserver-fixtures", "conversations", "-q")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*mockserver: *bad.yaml:1: conversation must be a non-empty list*"])
