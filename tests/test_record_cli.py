"""``mockserver record`` and ``--record-missing`` as a user runs them: a real process, one line per mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mock_helpers import ask, stop_cli, wait_until_serving, write_conversations
from test_mock_cli import ROOT, assert_one_line_usage_error, run_cli

from contract.core.semantics import assemble_stream
from contract.core.sse import SSEEvent, parse_stream
from mockserver.app import Settings, create_app
from mockserver.fixtures import load_fixtures
from mockserver.serve import ServerThread, free_port


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


def _start(args: list[str], env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    """The process and its banner, once it answers on ``port``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver.cli", *args, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)} | env,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, 10)
    except AssertionError:
        process.kill()
        raise
    return process, banner


def _stop(process: subprocess.Popen[str]) -> None:
    stop_cli(process)


def _text(reply: httpx.Response) -> str | None:
    events, _ = parse_stream(reply.content)
    return assemble_stream([e for e in events if isinstance(e, SSEEvent)]).content


def test_record_then_record_what_is_missing(tmp_path: Path) -> None:
    upstream_dir = write_conversations(tmp_path / "upstream")
    recorded = tmp_path / "recorded"
    key = "sk-cli-SECRET-4242424242"
    with ServerThread(create_app(upstream_dir, Settings(no_delay=True))) as upstream:
        port = free_port()
        process, banner = _start(
            ["record", "--upstream", upstream.url, "--fixtures", str(recorded)], {"OPENAI_API_KEY": key}, port
        )
        try:
            assert f"http://127.0.0.1:{port}/v1" in banner and f"forwarding to {upstream.url}/v1" in banner
            assert str(recorded) in banner and key not in banner
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=ask("Say hello."), timeout=5)
            assert _text(reply) == "Hello! How can I help you today?"
            journal = httpx.get(f"{upstream.url}/__mock/requests").json()["requests"]
            assert journal[-1]["headers"]["authorization"] == "[redacted]"  # the key from the environment went up
        finally:
            _stop(process)
        assert [f.conversation[0]["content"] for f in load_fixtures(recorded)] == ["Say hello."]

        port = free_port()
        process, banner = _start(
            ["--fixtures", str(recorded), "--upstream", upstream.url, "--record-missing", "--no-delay"], {}, port
        )
        try:
            assert f"recording what is missing from {upstream.url}/v1" in banner
            for text in ("Say hello.", "Count to ten in words."):
                reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=ask(text), timeout=5)
                assert reply.status_code == 200 and _text(reply)
        finally:
            _stop(process)
    assert sorted(f.conversation[0]["content"] for f in load_fixtures(recorded)) == [
        "Count to ten in words.",
        "Say hello.",
    ]
    assert key not in "".join(path.read_text() for path in recorded.glob("*.yaml"))
