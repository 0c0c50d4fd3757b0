"""``mockserver record`` and ``--record-missing`` as a user runs them: a real process, one line per mistake."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mock_helpers import MockServers, ask, serving_cli, write_conversations
from test_mock_cli import assert_one_line_usage_error, run_cli

from contract.core.semantics import assemble_stream
from contract.core.sse import SSEEvent, parse_stream
from mockserver.fixtures import load_fixtures
from mockserver.serve import free_port


@pytest.mark.parametrize(
    "args, words",
    [
        (["record"], ["--upstream"]),
        (["record", "--upstream", "ftp://example.com"], ["--upstream", "http://HOST:PORT"]),
        (["record", "--upstream", "http://127.0.0.1:1", "--header", "sk-no-colon-SECRET"], ["--header", "NAME: VALUE"]),
        (["record", "--upstream", "http://127.0.0.1:1", "--port", "70000"], ["--port"]),
        (["--record-missing", "--fixtures", "."], ["--record-missing needs --upstream"]),
        (["--upstream", "http://127.0.0.1:1"], ["only with --record-missing"]),
        (["--upstream", "http://127.0.0.1:1", "--record-missing"], ["needs --fixtures"]),
        (
            ["--upstream", "http://127.0.0.1:1", "--record-missing", "--fixtures", "fixtures", "--fallback"],
            ["--fallback"],
        ),
    ],
)
def test_usage_errors_are_one_line(args: list[str], words: list[str]) -> None:
    line = assert_one_line_usage_error(run_cli(*args), *words)
    assert "SECRET" not in line


def test_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = assert_one_line_usage_error(
        run_cli("record", "--upstream", "http://127.0.0.1:1", "--fixtures", str(blocker / "sub")),
        "--fixtures",
        "cannot write",
    )
    assert str(blocker) in line


def _text(reply: httpx.Response) -> str | None:
    events, _ = parse_stream(reply.content)
    return assemble_stream([e for e in events if isinstance(e, SSEEvent)]).content


def test_record_then_record_what_is_missing(mock_server_factory: MockServers, tmp_path: Path) -> None:
    upstream_dir = write_conversations(tmp_path / "upstream")
    recorded = tmp_path / "recorded"
    key = "sk-cli-SECRET-4242424242"
    quiet = ("--log-level", "warning")
    with mock_server_factory(upstream_dir, no_delay=True) as upstream:
        port = free_port()
        recording = ("record", "--upstream", upstream.url, "--fixtures", str(recorded), "--port", str(port))
        with serving_cli(*recording, *quiet, seconds=10, env={"OPENAI_API_KEY": key}) as cli:
            banner = cli.banner
            assert f"http://127.0.0.1:{port}/v1" in banner and f"forwarding to {upstream.url}/v1" in banner
            assert str(recorded) in banner and key not in banner
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=ask("Say hello."), timeout=5)
            assert _text(reply) == "Hello! How can I help you today?"
            journal = httpx.get(f"{upstream.url}/__mock/requests").json()["requests"]
            assert journal[-1]["headers"]["authorization"] == "[redacted]"  # the key from the environment went up
        assert [f.conversation[0]["content"] for f in load_fixtures(recorded)] == ["Say hello."]

        port = free_port()
        missing = ("--fixtures", str(recorded), "--upstream", upstream.url, "--record-missing", "--no-delay")
        with serving_cli(*missing, "--port", str(port), *quiet, seconds=10) as cli:
            assert f"recording what is missing from {upstream.url}/v1" in cli.banner
            for text in ("Say hello.", "Count to ten in words."):
                reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=ask(text), timeout=5)
                assert reply.status_code == 200 and _text(reply)
    assert sorted(f.conversation[0]["content"] for f in load_fixtures(recorded)) == [
        "Count to ten in words.",
        "Say hello.",
    ]
    assert key not in "".join(path.read_text() for path in recorded.glob("*.yaml"))
