"""Reports of a real run: console blocks, a curl line that reproduces, JUnit XML, JSON, and redaction in all."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from brokenservers import reference_app

from contract.core.redaction import Redactor
from contract.report import console_text, curl_line, write_json, write_junit
from contract.results import RunResult
from contract.runner import run
from mockserver.serve import ServerThread

SECRETS = {
    "Authorization": "Bearer sk-live-SECRET-0001",
    "X-Api-Key": "apikey-SECRET-0002",
    "X-Session-Token": "tok-SECRET-0003",
    "X-Trace": "trace-visible-42",
}


@pytest.fixture(scope="module")
def failing_run() -> tuple[RunResult, str]:
    """A run against a server that answers 500 to system messages and echoes the Authorization header."""
    server = ServerThread(reference_app("server_error", echo_authorization=True)).start()
    try:
        result = run(server.url, max_examples=15, seed=7, timeout=2.0, headers=SECRETS, phases=["realistic"])
    finally:
        server.stop()
    return result, server.url


def _assert_no_secret(text: str) -> None:
    for name, value in SECRETS.items():
        if name != "X-Trace":
            assert value not in text
            assert value.split()[-1] not in text
    assert "SECRET" not in text


def test_console_block_has_everything_and_no_secret(failing_run) -> None:
    result, url = failing_run
    text = console_text(result)
    _assert_no_secret(text)
    assert "FAILED: not_a_server_error" in text
    assert "expected: a status below 500" in text
    assert "minimal request:" in text and '"role": "system"' in text
    assert "curl -N" in text and "'Authorization: [redacted]'" in text
    assert "X-Trace: trace-visible-42" in text  # not a secret: kept, since it may matter to reproduce
    assert "HTTP 500" in text
    assert f"seed {result.seed}" in text and "--seed 7" in text
    assert "not_a_server_error" in text.split("check ")[-1]  # the summary table lists it


def test_curl_line_reproduces_the_failure(failing_run) -> None:
    result, _ = failing_run
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    record = result.failures[0]
    with ServerThread(reference_app("server_error")) as server:
        line = curl_line(record.request).replace(result.url, server.url)  # same request, fresh server
        completed = subprocess.run(
            ["sh", "-c", line + " -o /dev/null -w '%{http_code}'"], capture_output=True, text=True, timeout=10
        )
    assert completed.stdout.strip() == "500", completed.stderr


def test_junit_parses_with_one_testcase_per_check(failing_run, tmp_path: Path) -> None:
    result, _ = failing_run
    path = tmp_path / "contract.xml"
    write_junit(result, path)
    raw = path.read_text(encoding="utf-8")
    _assert_no_secret(raw)
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == result.checks
    assert suite.get("tests") == str(len(result.checks))
    assert suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["not_a_server_error"]
    assert "curl -N" in failed[0].find("failure").text
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["seed"] == "7"


def test_json_loads_and_holds_the_result(failing_run, tmp_path: Path) -> None:
    result, _ = failing_run
    path = tmp_path / "contract.json"
    write_json(result, path)
    raw = path.read_text(encoding="utf-8")
    _assert_no_secret(raw)
    data = json.loads(raw)
    assert data["ok"] is False and data["seed"] == 7
    assert data["requests_sent"] == result.requests_sent
    failure = data["failures"][0]
    assert failure["check"] == "not_a_server_error" and failure["blame"] == "server"
    assert failure["request"]["headers"]["Authorization"] == "[redacted]"
    assert failure["request"]["headers"]["X-Trace"] == "trace-visible-42"
    assert failure["response"]["status"] == 500
    assert set(data["timings"]) == {"ttfb_ms", "ttft_ms", "total_ms"}
    assert data["stats"]["not_a_server_error"]["failed"] >= 1


def test_redactor_names_and_values() -> None:
    redactor = Redactor(("hunter2-long",))
    headers = redactor.headers(
        {"authorization": "x", "X-Client-Secret": "y", "Api-Key": "z", "Password": "p", "Accept": "text/event-stream"}
    )
    assert headers == {
        "authorization": "[redacted]",
        "X-Client-Secret": "[redacted]",
        "Api-Key": "[redacted]",
        "Password": "[redacted]",
        "Accept": "text/event-stream",
    }
    assert redactor.text("echo hunter2-long back") == "echo [redacted] back"


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    from contract.core.exchange import Exchange, Failure, PreparedRequest
    from contract.results import CheckStats, FailureRecord

    request = PreparedRequest("POST", "http://127.0.0.1:1/chat/completions", {}, {"messages": []}, b'{"messages": []}')
    exchange = Exchange(request=request, status=200, body=b"\x00\x01bad")
    record = FailureRecord.of(Failure("response_body_valid", "body \x00 is not JSON"), "schema", exchange)
    result = RunResult(
        url="http://127.0.0.1:1",
        spec_source="openapi.yaml",
        seed=1,
        checks=["response_body_valid"],
        failures=[record],
        stats={"response_body_valid": CheckStats(0, 1)},
    )
    write_junit(result, tmp_path / "r.xml")
    failure = ET.parse(tmp_path / "r.xml").getroot().find("testcase/failure")
    assert "\\u0000" in failure.get("message")


def test_a_secret_inside_a_json_number_neither_breaks_nor_leaks_the_json_report(tmp_path: Path) -> None:
    """Redaction works on values: ``X-Api-Key: 1732600`` beside ``"created": 1732600000`` once crashed --json."""
    server = ServerThread(reference_app("server_error", echo_authorization=True)).start()
    try:
        result = run(
            server.url,
            max_examples=5,
            seed=7,
            timeout=2.0,
            phases=["realistic"],
            headers={"X-Api-Key": "1732600", "Authorization": "Bearer sk-bare-token-0042"},
        )
    finally:
        server.stop()
    record = result.failures[0]
    record.exchange.json = {"created": 1732600000, "note": "key 1732600 and token sk-bare-token-0042"}
    path = tmp_path / "result.json"
    write_json(result, path)
    written = json.loads(path.read_text(encoding="utf-8"))
    response = written["failures"][0]["response"]["json"]
    assert response == {"created": 1732600000, "note": "key [redacted] and token [redacted]"}
    assert "sk-bare-token-0042" not in path.read_text(encoding="utf-8")


def test_a_check_that_judged_nothing_is_not_exercised_in_every_report(tmp_path: Path) -> None:
    """Only the negative phase runs, so the stream checks see no stream: never reported as ok."""
    with ServerThread(reference_app()) as server:
        result = run(server.url, max_examples=3, seed=7, timeout=2.0, phases=["negative"])
    assert result.stats["chunks_valid"].judged == 0 and result.verdict("chunks_valid") == "not exercised"
    assert result.verdict("negative_rejected") == "ok" and result.stats["negative_rejected"].judged >= 3
    text = console_text(result)
    row = next(line for line in text.splitlines() if line.startswith("chunks_valid "))
    assert row.split()[1:] == ["0", "0", "0", "not", "exercised"]
    write_junit(result, tmp_path / "junit.xml")
    case = ET.parse(tmp_path / "junit.xml").getroot().find("testcase[@name='chunks_valid']")
    assert case is not None and case.find("skipped") is not None
    write_json(result, tmp_path / "result.json")
    stats = json.loads((tmp_path / "result.json").read_text())["stats"]
    assert stats["chunks_valid"] == {"judged": 0, "passed": 0, "failed": 0, "result": "not exercised"}
