"""``pytest --contract-url``: one test per check, failures shown as the console blocks; nothing without the flag."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from contract.runner import select_checks
from mockserver.serve import ServerThread

from brokenservers import reference_app

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest runs in a subprocess (as a user's would), importing the package from this tree."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def _plugin_args() -> list[str]:
    """Load the plugin explicitly unless the installed entry point already does."""
    installed = any(ep.name == "chatstream-contract" for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "contract.pytest_plugin"]


def test_a_broken_server_fails_its_check_item(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app("role_not_first")) as server:
        result = pytester.runpytest_subprocess(*_plugin_args(), "--contract-url", server.url, "--contract-max-examples", "5",
                                    "--contract-seed", "3", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1
    assert outcomes.get("passed") == len(select_checks(None, None)) - 1
    result.stdout.fnmatch_lines(["*contract-check: * seed 3*", "*FAILED: role_first*", "*curl -N*",
                                 "*contract summary*", "*FAILED contract::role_first*"])


def test_a_correct_server_passes_every_item(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app()) as server:
        result = pytester.runpytest_subprocess(*_plugin_args(), "--contract-url", server.url, "--contract-max-examples", "5",
                                    "--contract-seed", "3", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(select_checks(None, None)))
    result.stdout.fnmatch_lines(["*contract::chunks_valid PASSED*"])


def test_k_selects_one_check(pytester: pytest.Pytester) -> None:
    with ServerThread(reference_app()) as server:
        result = pytester.runpytest_subprocess(*_plugin_args(), "--contract-url", server.url, "--contract-max-examples", "3",
                                    "-k", "usage_consistent", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=len(select_checks(None, None)) - 1)


def test_an_unreachable_url_fails_every_item_with_one_line(pytester: pytest.Pytester) -> None:
    from brokenservers import closed_port

    result = pytester.runpytest_subprocess(*_plugin_args(), "--contract-url", f"http://127.0.0.1:{closed_port()}",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(failed=len(select_checks(None, None)))
    result.stdout.fnmatch_lines(["*contract-check: error: cannot reach*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_without_the_flag_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "contract" not in result.stdout.str()
