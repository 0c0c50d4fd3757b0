"""``contract-check URL`` as a user runs it: a subprocess, its exit code, stdout, stderr and report files."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from brokenservers import closed_port, reference_app
from mock_helpers import MockServers

from mockserver.serve import ServerThread

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--max-examples", "5", "--seed", "11", "--timeout", "2"]


def contract_check(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def good_url() -> str:
    server = ServerThread(reference_app()).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def broken_url() -> str:
    server = ServerThread(reference_app("no_done")).start()
    yield server.url
    server.stop()


def test_exit_0_when_every_check_holds(good_url: str, tmp_path: Path) -> None:
    done = contract_check(good_url, *FAST, "--junit", str(tmp_path / "r.xml"), "--json", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed 11" in done.stdout and "0 failing check(s)" in done.stdout
    assert "schema" in done.stderr and "negative" in done.stderr  # progress, one line per phase
    assert ET.parse(tmp_path / "r.xml").getroot().get("failures") == "0"
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True


def test_exit_1_with_a_failure_block(broken_url: str) -> None:
    done = contract_check(broken_url, *FAST, "--workers", "2", "--header", "Authorization: Bearer sk-SECRET-9")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: stream_terminated" in done.stdout
    assert "curl -N" in done.stdout and "minimal request:" in done.stdout
    assert "sk-SECRET-9" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_checks_and_exclude_checks_select(broken_url: str) -> None:
    only = contract_check(broken_url, *FAST, "--checks", "not_a_server_error,chunks_valid")
    assert only.returncode == 0, only.stdout
    table = only.stdout.split("check ", 1)[-1]
    assert "stream_terminated" not in table and "chunks_valid" in table
    excluded = contract_check(broken_url, *FAST, "--exclude-checks", "stream_terminated")
    assert excluded.returncode == 0, excluded.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["ftp://127.0.0.1:21"], "must start with http:// or https://"),
        (["http://127.0.0.1:{port}"], "cannot reach"),
        (["{good}", "--checks", "no_such_check"], "unknown check 'no_such_check'"),
        (["{good}", "--header", "no colon here"], "must look like 'Name: value'"),
        (["{good}", "--spec", "/nonexistent/openapi.yaml"], "/nonexistent/openapi.yaml"),
        (["{good}", "--max-examples", "0"], "must be at least 1"),
        (["{good}", "--timeout", "soon"], "is not a number"),
    ],
)
def test_exit_2_with_one_line(good_url: str, args: list[str], message: str) -> None:
    argv = [a.format(port=closed_port(), good=good_url) for a in args]
    done = contract_check(*argv)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contract-check: error:"), done.stderr
    assert message in lines[0]
    assert done.stdout == ""


def test_an_unwritable_report_path_is_a_usage_error(good_url: str, tmp_path: Path) -> None:
    done = contract_check(good_url, *FAST, "--junit", str(tmp_path / "missing" / "dir" / "r.xml"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"contract-check: error: cannot write report --junit "
        f"{tmp_path / 'missing' / 'dir' / 'r.xml'}: no such directory"
    ]
    assert done.stdout == ""


@pytest.mark.parametrize("command", ["contract-check", "mockserver"])
def test_version(command: str) -> None:
    import importlib.metadata
    import shutil
    import subprocess

    path = shutil.which(command)
    if path is None:
        pytest.skip(f"{command} is not installed as a script")
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    line = done.stdout.strip()
    assert line.startswith(f"{command} {importlib.metadata.version('chatstream-testkit')} (hypothesis ")
    assert "\n" not in line


def test_a_wrong_base_url_exits_1_with_the_diagnosis_on_top(mock_server_factory: MockServers, tmp_path: Path) -> None:
    """Every valid request gets the mock's documented 404: that proves nothing, so it is not a pass."""
    with mock_server_factory(None, no_delay=True) as server:
        done = contract_check(
            server.url + "/v2", *FAST, "--junit", str(tmp_path / "r.xml"), "--json", str(tmp_path / "r.json")
        )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("INCONCLUSIVE: all ") and "valid requests got 404 `unknown_path`" in lines[0]
    assert f"the operation is POST {server.url}/v2/chat/completions; try {server.url}/v1" in lines[0]
    assert lines[-1] == lines[0], "the verdict is the first line and the last"
    assert "chunks_valid" in done.stdout and "not exercised" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] is False and report["diagnosis"].startswith("all ")
    assert report["stats"]["chunks_valid"]["result"] == "not exercised"
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.find("testcase[@name='run_is_conclusive']/failure") is not None
    assert suite.find("testcase[@name='chunks_valid']/skipped") is not None


def test_max_examples_must_be_positive_everywhere(good_url: str) -> None:
    from contract.runner import UsageError, run

    done = contract_check(good_url, "--max-examples", "0")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "must be at least 1" in done.stderr
    with pytest.raises(UsageError, match="max_examples must be at least 1"):
        run(good_url, max_examples=0)


OWN_CHECK = '''
import contract


@contract.check(scope="response")
def request_id_header(ctx, exchange):
    """Every answer carries an x-request-id header."""
    if exchange.status is None:
        return None
    assert "x-request-id" in exchange.headers, "no x-request-id header"
    return []
'''


def test_import_brings_in_the_user_s_own_checks(good_url: str, tmp_path: Path) -> None:
    (tmp_path / "my_checks.py").write_text(OWN_CHECK, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "contract.cli",
            good_url,
            *FAST,
            "--import",
            "my_checks",
            "--checks",
            "request_id_header,not_a_server_error",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: request_id_header" in done.stdout and "no x-request-id header" in done.stdout
    missing = contract_check(good_url, *FAST, "--import", "no_such_checks_module")
    assert missing.returncode == 2 and missing.stderr.startswith(
        "contract-check: error: --import no_such_checks_module"
    )
    assert "Traceback" not in missing.stderr
