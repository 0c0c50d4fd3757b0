"""``pytest --contract-url``: one test per check, failures shown as the console blocks; nothing without the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from brokenservers import reference_app
from mock_helpers import plugin_args

from contract.runner import checks_to_run
from mockserver.serve import ServerThread

pytest_plugins = ["pytester"]
PLUGIN = plugin_args("chatstream-contract", "contract.pytest_plugin")  # loads the plugin in inner pytest runs
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest runs in a subprocess (as a user's would), importing the package from this tree."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


@pytest.mark.slow
def test_a_broken_server_fails_its_check_item(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app("role_not_first")) as server:
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-max-examples",
            "5",
            "--contract-seed",
            "3",
            "-p",
            "no:cacheprovider",
        )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert outcomes.get("passed") == len(checks_to_run(None, None))  # every other check, and run_is_conclusive
    result.stdout.fnmatch_lines(
        [
            "*contract-check: * seed 3*",
            "*FAILED: role_first*",
            "*curl -N*",
            "*contract summary*",
            "*FAILED contract::role_first*",
        ]
    )


@pytest.mark.slow
def test_a_correct_server_passes_every_item(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app()) as server:
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-max-examples",
            "5",
            "--contract-seed",
            "3",
            "-v",
            "-p",
            "no:cacheprovider",
        )
    result.assert_outcomes(passed=len(checks_to_run(None, None)) + 1)
    result.stdout.fnmatch_lines(["*contract::run_is_conclusive PASSED*", "*contract::chunks_valid PASSED*"])


USER_CHECK = """
import contract


@contract.check(scope="semantics")
def no_system_prompt(ctx, exchange):
    \"\"\"Our server ignores system prompts, so a request must not carry one.\"\"\"
    body = exchange.request.body
    if exchange.status != 200 or not isinstance(body, dict):
        return None
    assert all(m.get("role") != "system" for m in body.get("messages", [])), "a system prompt was sent"
    return []
"""


@pytest.mark.slow
def test_a_check_in_conftest_becomes_an_item(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(USER_CHECK)
    with ServerThread(reference_app()) as server:
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-max-examples",
            "5",
            "--contract-seed",
            "3",
            "-p",
            "no:cacheprovider",
        )
    result.assert_outcomes(failed=1, passed=len(checks_to_run(None, None)) + 1)
    result.stdout.fnmatch_lines(
        ["*FAILED: no_system_prompt*", "*a system prompt was sent*", "*FAILED contract::no_system_prompt*"]
    )


@pytest.mark.slow
def test_k_selects_one_check(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app()) as server:
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-max-examples",
            "3",
            "-k",
            "usage_consistent",
            "-p",
            "no:cacheprovider",
        )
    result.assert_outcomes(passed=1, deselected=len(checks_to_run(None, None)))


def test_an_unreachable_url_fails_every_item_with_one_line(pytester: pytest.Pytester) -> None:
    from brokenservers import closed_port

    result = pytester.runpytest_subprocess(
        *PLUGIN, "--contract-url", f"http://127.0.0.1:{closed_port()}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=len(checks_to_run(None, None)) + 1)
    result.stdout.fnmatch_lines(["*contract-check: error: cannot reach*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_without_the_flag_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "contract" not in result.stdout.str()


@pytest.mark.slow
def test_a_wrong_base_url_is_inconclusive_not_green(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app()) as server:
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url + "/v2",
            "--contract-max-examples",
            "2",
            "--contract-seed",
            "3",
            "-p",
            "no:cacheprovider",
            "-rfs",
        )
    # This server's 404 is Starlette's plain-text page, which the error checks also fail; the point is
    # the verdict on the run as a whole, and that no stream check claims a pass it never judged.
    assert result.ret != 0 and result.parseoutcomes().get("skipped", 0) >= 10
    result.stdout.fnmatch_lines(
        [
            "*INCONCLUSIVE: all * valid requests got 404*try *",
            "*FAILED contract::run_is_conclusive*",
            "*not exercised: chunks_valid judged no*",
        ]
    )


@pytest.mark.slow
def test_headers_are_sent_and_redacted(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app("server_error", echo_authorization=True)) as server:
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-header",
            "Authorization: Bearer sk-plugin-SECRET-7",
            "--contract-header",
            "X-Trace: visible-7",
            "--contract-max-examples",
            "3",
            "--contract-seed",
            "3",
            "-p",
            "no:cacheprovider",
        )
    result.stdout.fnmatch_lines(
        ["*FAILED: not_a_server_error*", "*-H 'Authorization: ?redacted?' -H 'X-Trace: visible-7'*"]
    )
    assert "sk-plugin-SECRET-7" not in result.stdout.str()
    # The rerun line names every option that changes what is sent, and the headers by name only.
    reruns = [line for line in result.stdout.lines if "rerun" in line and "pytest --contract-url" in line]
    assert reruns, result.stdout.str()[-2000:]
    assert all(
        f"pytest --contract-url {server.url} --contract-seed 3 --contract-max-examples 3 "
        '--contract-header "Authorization: $AUTHORIZATION" --contract-header "X-Trace: $X_TRACE"'
        in line
        and "visible-7" not in line
        for line in reruns
    ), reruns


@pytest.mark.slow
def test_bad_options_are_one_line(pytester: pytest.Pytester) -> None:
    for option in (["--contract-max-examples", "0"], ["--contract-header", "no colon here"]):
        result = pytester.runpytest_subprocess(
            *PLUGIN, "--contract-url", "http://127.0.0.1:9", *option, "-p", "no:cacheprovider"
        )
        assert result.ret != 0
        output = result.stdout.str() + result.stderr.str()
        assert "Traceback" not in output
        assert "--contract-max-examples must be at least 1" in output or "must look like 'Name: value'" in output


@pytest.mark.slow
def test_under_xdist_the_suite_runs_once(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    hits: list[int] = []
    app = reference_app()

    async def counting(scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            hits.append(1)
        await app(scope, receive, send)

    with ServerThread(counting) as server:
        single = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-max-examples",
            "2",
            "--contract-seed",
            "3",
            "-p",
            "no:cacheprovider",
        )
        once = len(hits)
        distributed = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            server.url,
            "--contract-max-examples",
            "2",
            "--contract-seed",
            "3",
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
        )
    assert single.ret == 0 and distributed.ret == 0, distributed.stdout.str()[-3000:]
    assert len(hits) == 2 * once  # the second run sent exactly as many requests as the first: one suite
    distributed.assert_outcomes(passed=len(checks_to_run(None, None)) + 1)
    distributed.stdout.fnmatch_lines(["*contract summary*", "*0 failing check(s)*"])
