"""Verdicts a user can act on: every failed check FAIL with its own small example, a closed connection
blamed on the answer before it, the verdict on the first and last line, a rerun line that repeats the run.

The servers are real (tests/brokenservers.py on loopback ports): one that crashes with a plain-text 500
on a tool without ``function``, which fails several checks on one exchange, and the same behind a proxy
that makes uvicorn's close of the connection after that 500 always meet the next request.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from brokenservers import LateCloseProxy, reference_app

from contract.checks import CheckContext, run_checks
from contract.client import Timeout, http_client, send
from contract.core.exchange import PreparedRequest
from contract.core.spec import load_spec
from contract.core.validate import ContractValidator
from contract.reduce import reduce_json
from contract.report import console_text, junit_tree, result_dict
from contract.runner import REDUCE_PER_CHECK, run
from mockserver.serve import ServerThread

ROOT = Path(__file__).resolve().parent.parent
SEED = 5
# What the crash server's one 500 fails at once: the status, its content type, and its body.
CRASH_CHECKS = {"not_a_server_error", "content_type_matches", "error_body_valid"}
PASTE_SIZE = 200  # bytes: an example a person pastes into a bug report


@pytest.fixture(scope="module")
def crash_url() -> Any:
    with ServerThread(reference_app(crashes_on_empty_tool=True), log_level="critical") as server:
        yield server.url


@pytest.fixture(scope="module")
def crash_result(crash_url: str) -> Any:
    return run(crash_url, seed=SEED, timeout=5.0, phases=["schema"], max_examples=40)


def _has_empty_tool(body: Any) -> bool:
    return any(isinstance(tool, dict) and "function" not in tool for tool in body.get("tools") or [])


# -- 1 and 3: one exchange fails several checks; each is FAIL with its own small example ------------


def test_every_check_one_exchange_fails_is_fail_with_its_own_small_example(crash_result: Any) -> None:
    result = crash_result
    assert CRASH_CHECKS <= set(result.failed_checks), result.failed_checks
    for check in CRASH_CHECKS:
        assert result.verdict(check) == "FAIL"
        (record,) = result.failures_for(check)
        assert record.exchange.status == 500 and not record.as_sent
        assert _has_empty_tool(record.request.body), record.request.body
        assert len(record.request.raw_body) < PASTE_SIZE, record.request.raw_body
        assert record.request.raw_body.isascii()
    # The same in JUnit: a failing testcase per check, none passing while its exchanges failed.
    cases = {case.get("name"): case for case in junit_tree(result).getroot().iter("testcase")}
    assert all(cases[check].find("failure") is not None for check in CRASH_CHECKS)
    # And no check anywhere reads ok while it has failed exchanges.
    assert all(result.verdict(name) == "FAIL" for name, stats in result.stats.items() if stats.failed)


def test_a_500_among_junk_keys_reduces_to_the_empty_tool(crash_url: str) -> None:
    """The hand-minimised example is ``{"messages": [], "tools": [{}]}`` (31 bytes); sixty junk keys of
    free-form objects around it, in several scripts, must not survive the reduction."""
    junk = {f"ключ-{n}-\u00e9\u4e2d": {"\u00fc": [n, "\u2603" * 5]} for n in range(60)}
    body = {
        "messages": [{"role": "user", "content": "héllo wörld " * 8}, {"role": "user", "content": "again"}],
        "tools": [{"type": "function", "function": {"name": "lookup"}}, {**junk}],
        **junk,
    }
    validator = ContractValidator(load_spec())
    assert not validator.validate_request(body), "the junk request is valid, as the schema allows"
    sent: list[int] = []

    def still_fails(candidate: Any) -> bool:
        sent.append(1)
        return httpx.post(f"{crash_url}/chat/completions", json=candidate, timeout=5).status_code == 500

    reduced = reduce_json(body, still_fails, lambda c: not validator.validate_request(c), REDUCE_PER_CHECK)
    raw = json.dumps(reduced.value, ensure_ascii=False).encode()
    assert len(raw) < PASTE_SIZE and raw.isascii(), raw
    assert _has_empty_tool(reduced.value) and len(raw) <= 2 * 31, raw
    assert reduced.asked == len(sent) <= REDUCE_PER_CHECK


# -- 2: a connection closed after a 500 is blamed on the 500 -------------------------------------


def test_a_connection_closed_after_an_answer_is_blamed_on_that_answer() -> None:
    with ServerThread(reference_app(crashes_on_empty_tool=True), log_level="critical") as server:
        with LateCloseProxy(server.port) as proxy:
            result = run(proxy.url, seed=SEED, timeout=5.0, phases=["schema"], max_examples=40)
    (record,) = result.failures_for("transport_ok")
    assert "closed the connection after answering this request" in record.message
    assert record.exchange.status == 500 and _has_empty_tool(record.request.body), "blamed on the crash"
    assert record.as_sent and record.then is not None
    text = console_text(result)
    assert "sent next on the same connection, and left unanswered:" in text
    assert " --next " in text
    report = result_dict(result)
    (as_json,) = [f for f in report["failures"] if f["check"] == "transport_ok"]
    assert as_json["then"] is not None and " --next " in as_json["curl"] and as_json["as_sent"] is True
    # The innocent request went through on a new connection: no transport error is left to report.
    assert "ReadError" not in text and "reset" not in record.message


# -- 7: time to a verdict, counted in requests (the seconds are in benchmarks/time_to_verdict.py) ------


@pytest.fixture(scope="module")
def correct_requests() -> int:
    with ServerThread(reference_app(), log_level="critical") as server:
        return run(server.url, seed=SEED, timeout=5.0).requests_sent


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["server_error", "ignores_tool_choice_none", "bad_error_body", "crash"])
def test_a_default_run_against_a_broken_server_sends_at_most_twice_the_requests(
    broken: str, correct_requests: int
) -> None:
    """Reducing costs a bounded few requests per failing check, not a search up to the phase's cap: a run
    that fails sends at most twice what a run against the correct server sends, with the same options."""
    app = reference_app(crashes_on_empty_tool=True) if broken == "crash" else reference_app(broken)
    with ServerThread(app, log_level="critical") as server:
        result = run(server.url, seed=SEED, timeout=5.0)
    assert not result.ok and result.failed_checks
    assert correct_requests <= result.requests_sent <= 2 * correct_requests, (result.requests_sent, correct_requests)
    # A connection the server closed after an answer is shown on the request before it, as sent: whether the
    # close meets the next request is a race, so that record (transport_ok) comes and goes with the timing.
    reduced = [record for record in result.failures if record.check != "transport_ok"]
    assert reduced and not any(record.as_sent for record in reduced), [(r.check, r.as_sent) for r in reduced]
    assert all(len(record.request.raw_body) < 4 * PASTE_SIZE for record in reduced), [
        (record.check, len(record.request.raw_body)) for record in reduced
    ]


# -- 4: the verdict is the first line and the last -----------------------------------------------


def test_the_verdict_is_the_first_and_the_last_line(crash_result: Any) -> None:
    lines = console_text(crash_result).splitlines()
    assert lines[0] == lines[-1] == "FAILED: " + ", ".join(crash_result.failed_checks)
    assert lines[0].startswith("FAILED: not_a_server_error, ")
    with ServerThread(reference_app()) as server:
        passed = run(server.url, seed=SEED, timeout=5.0, phases=["coverage"])
    lines = console_text(passed).splitlines()
    assert lines[0] == lines[-1] == "PASSED"


# -- 5: the rerun line repeats the run --------------------------------------------------------------


def test_the_rerun_line_names_every_option_and_no_header_value(tmp_path: Path) -> None:
    spec = tmp_path / "contract.yaml"
    spec.write_text((ROOT / "openapi.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    report = tmp_path / "first.json"
    secret = "Bearer sk-rerun-SECRET-1"
    with ServerThread(reference_app("server_error")) as server:
        first = _cli(
            server.url,
            "--spec",
            str(spec),
            "--profile",
            "openai",
            "--max-examples",
            "4",
            "--phases",
            "coverage,realistic",
            "--exclude-checks",
            "usage_consistent",
            "--timeout",
            "3",
            "--header",
            f"Authorization: {secret}",
            "--seed",
            "9",
            "--json",
            str(report),
        )
        assert first.returncode == 1, first.stdout[-2000:] + first.stderr
        rerun = json.loads(report.read_text(encoding="utf-8"))["rerun"]
        assert rerun == (
            f"contract-check {server.url} --seed 9 --spec {spec} --profile openai --max-examples 4 "
            "--phases coverage,realistic --exclude-checks usage_consistent --timeout 3 "
            '--header "Authorization: $AUTHORIZATION"'
        )
        assert secret not in first.stdout and rerun in first.stdout
        # Pasted into a shell with the header's variable set, it sends the same requests again.
        again_report = tmp_path / "again.json"
        command = rerun.replace("contract-check", f"{shlex.quote(sys.executable)} -m contract.cli", 1)
        again = subprocess.run(
            ["bash", "-c", f"{command} --json {shlex.quote(str(again_report))}"],
            cwd=ROOT,
            env={**os.environ, "AUTHORIZATION": secret},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert again.returncode == 1, again.stderr
    one, two = (json.loads(path.read_text(encoding="utf-8")) for path in (report, again_report))
    assert one["requests_sent"] == two["requests_sent"]
    assert [(f["check"], f["request"]["body"]) for f in one["failures"]] == [
        (f["check"], f["request"]["body"]) for f in two["failures"]
    ]


# -- 6: progress and the JSON count alike; an unoffered tool_choice; a header value never echoed ----


def test_progress_lines_and_the_json_count_failing_checks_alike(crash_url: str) -> None:
    finished: dict[str, int] = {}

    def progress(summary: Any, done: bool) -> None:
        if done:
            finished[summary.name] = summary.failing_checks

    result = run(crash_url, seed=SEED, timeout=5.0, phases=["schema", "coverage"], max_examples=40, progress=progress)
    phases = {phase["name"]: phase["failing_checks"] for phase in result_dict(result)["phases"]}
    assert finished == phases and phases["schema"] >= len(CRASH_CHECKS)


def test_an_unoffered_tool_choice_answered_with_text_says_the_server_should_refuse() -> None:
    body = {
        "messages": [{"role": "user", "content": "What time is it?"}],
        "tools": [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stream": False,
    }
    spec = load_spec()
    with ServerThread(reference_app(answers_unoffered_choice=True)) as server, http_client(1) as client:
        raw = json.dumps(body).encode()
        request = PreparedRequest(
            "POST", f"{server.url}/chat/completions", {"Content-Type": "application/json"}, body, raw
        )
        exchange = send(client, request, timeout=Timeout(5.0))
    context = CheckContext.for_spec(spec)
    (failure,) = run_checks(context, exchange, ["tool_choice_honoured"])
    assert exchange.status == 200
    assert "'get_weather', a tool the request does not offer" in failure.message
    assert "should have refused the request with a 400" in failure.message


def test_a_malformed_header_is_refused_without_its_value() -> None:
    done = _cli("http://127.0.0.1:9", "--header", "Authorization Bearer sk-header-SECRET-2")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "'Authorization'" in done.stderr, done.stderr
    assert "sk-header-SECRET-2" not in done.stderr and "Bearer" not in done.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
