"""``mockserver`` as a user runs it: a real process on a free port, and one clear line for each mistake."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mock_helpers import ask, serving_cli, write_conversations

from mockserver.serve import free_port

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockserver.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


def assert_one_line_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and lines[0].startswith("mockserver: ")
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_serves_until_interrupted(tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "c")
    port = free_port()
    args = ("--fixtures", str(folder), "--port", str(port), "--no-delay", "--seed", "7", "--log-level", "warning")
    with serving_cli(*args, seconds=10) as cli:
        banner = cli.banner
        assert f"http://127.0.0.1:{port}/v1" in banner and "9 fixtures" in banner and "seed 7" in banner
        health = cli.health
        assert health.json() == {"status": "ok", "fixtures": 9}
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=ask("Say hello.", stream=False))
        assert reply.json()["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
        # Replies on a kept-alive connection are not held back by Nagle's algorithm (~40 ms each if they are).
        with httpx.Client() as client:
            elapsed = []
            for _ in range(7):
                started = time.perf_counter()
                client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=ask("Say hello.", stream=False))
                elapsed.append(time.perf_counter() - started)
        assert sorted(elapsed)[3] < 0.025, elapsed


def test_missing_folder() -> None:
    assert_one_line_usage_error(run_cli("--fixtures", "/no/such/folder"), "/no/such/folder", "does not exist")


def test_broken_fixture_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "conversation:\n  - {role: user, content: Hi}\n  - {role: assistant, contnt: Hello}\n"
    )
    line = assert_one_line_usage_error(run_cli("--fixtures", str(tmp_path)))
    assert f"{tmp_path / 'broken.yaml'}:3:" in line and "contnt" in line


def test_reply_that_breaks_the_contract_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "faulty.yaml").write_text(
        "conversation:\n  - {role: user, content: Hi}\n  - role: assistant\n    content: Hello\n"
        "    fault: {type: stall, stall_ms: fast}\n"
    )
    line = assert_one_line_usage_error(run_cli("--fixtures", str(tmp_path)))
    assert f"{tmp_path / 'faulty.yaml'}:" in line and "stall_ms" in line


@pytest.mark.parametrize(
    "args, words",
    [
        (["--jitter", "2"], ["--jitter"]),
        (["--port", "70000"], ["--port"]),
        (["--fault-types", "http_error,meteor"], ["meteor"]),
        (["--fault-rate", "1.5"], ["--fault-rate"]),
        (["--ttft-ms", "soon"], ["--ttft-ms"]),
    ],
)
def test_bad_arguments(args: list[str], words: list[str]) -> None:
    assert_one_line_usage_error(run_cli(*args), *words)


def test_port_in_use(tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "c")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_usage_error(run_cli("--fixtures", str(folder), "--port", str(port)), "cannot listen", str(port))
