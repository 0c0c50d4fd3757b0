"""A check of the user's own, added with ``@contract.check``, runs, shrinks and reports like the built-in ones.

Each test registers its check inside a fixture and removes it afterwards, so no
other test (in this process or another xdist worker) ever sees it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from brokenservers import reference_app
from test_checks import HELLO, completion, json_exchange

import contract
from contract.checks import BUILT_IN, CHECKS, CheckContext, checks_table, default_checks, judge
from contract.core.exchange import Exchange
from contract.core.spec import load_spec
from contract.report import write_console, write_json
from contract.runner import run
from mockserver.serve import ServerThread

SEED = 20240611
NAME = "answers_without_system_prompt"


@pytest.fixture
def no_system_prompt() -> Iterator[str]:
    """A check a user might write for a server that ignores system prompts: a request must not carry one."""

    @contract.check(scope="semantics")
    def answers_without_system_prompt(ctx: CheckContext, exchange: Exchange) -> list[Any] | None:
        """Our server ignores system prompts, so a request that sends one gets an answer that misleads."""
        body = exchange.request.body
        if exchange.status != 200 or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return None
        roles = [m.get("role") for m in body["messages"] if isinstance(m, dict)]
        if "system" in roles:
            return [
                contract.Failure(
                    NAME,
                    f"a system prompt was sent (message {roles.index('system')})",
                    expected="no system message",
                    seen="role system",
                )
            ]
        return []

    try:
        yield NAME
    finally:
        contract.unregister(NAME)


def test_a_user_check_runs_shrinks_and_reports_like_a_built_in(no_system_prompt: str, tmp_path: Path) -> None:
    assert no_system_prompt in default_checks() and no_system_prompt in checks_table()
    with ServerThread(reference_app()) as server:
        result = run(server.url, max_examples=15, seed=SEED, timeout=2.0, phases=["realistic"])
    assert result.stats[NAME].judged > 0 and result.stats[NAME].failed >= 1
    assert {f.check for f in result.failures} == {NAME}, [(f.check, f.message) for f in result.failures]
    [record] = result.failures_for(NAME)
    assert record.blame == "server" and record.phase == "realistic" and "a system prompt was sent" in record.message
    # Shrunk: Hypothesis cut the generated conversation down to the system message and at most one other.
    messages = record.request.body["messages"]
    assert 1 <= len(messages) <= 2 and any(m.get("role") == "system" for m in messages), messages

    console = io.StringIO()
    write_console(result, console)
    assert f"FAILED: {NAME}" in console.getvalue() and "minimal request:" in console.getvalue()
    write_json(result, tmp_path / "result.json")
    written = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert written["stats"][NAME]["result"] == "FAIL" and written["stats"][NAME]["judged"] > 0
    assert [f["check"] for f in written["failures"]] == [NAME]


def test_unregistering_leaves_only_the_built_in_checks(no_system_prompt: str) -> None:
    assert NAME in CHECKS
    contract.unregister(NAME)
    assert set(CHECKS) == BUILT_IN
    with pytest.raises(ValueError, match="built-in"):
        contract.unregister("role_first")


@pytest.fixture
def ctx() -> CheckContext:
    return CheckContext.for_spec(load_spec())


def test_a_failed_assert_and_a_message_are_failures_under_the_check_s_name(ctx: CheckContext) -> None:
    @contract.check
    def asserts_a_short_reply(ctx: CheckContext, exchange: Exchange) -> list[str]:
        """Replies stay under ten characters."""
        assert len(exchange.body) < 10, f"the body has {len(exchange.body)} bytes"
        return []

    @contract.check(scope="response", default=False, name="says_why")
    def complains(ctx: CheckContext, exchange: Exchange) -> list[Any]:
        return ["first line\n  second line", contract.Failure("some_other_name", "renamed")]

    try:
        exchange = json_exchange(HELLO, 200, completion({"content": "Hello there, how are you?"}))
        outcome = judge(ctx, exchange, ["asserts_a_short_reply", "says_why"])
        assert {f.check for f in outcome.failures} == {"asserts_a_short_reply", "says_why"}
        assert outcome.judged == {"asserts_a_short_reply", "says_why"}
        messages = [f.message for f in outcome.failures]
        assert messages[0].startswith("the body has") and messages[1:] == ["first line second line", "renamed"]
        assert "says_why" not in default_checks()
        assert CHECKS["asserts_a_short_reply"].description == "Replies stay under ten characters."
        assert CHECKS["asserts_a_short_reply"].scope == "response"
    finally:
        contract.unregister("asserts_a_short_reply")
        contract.unregister("says_why")


def test_a_name_or_scope_that_would_confuse_the_registry_is_refused() -> None:
    def role_first(ctx: CheckContext, exchange: Exchange) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        contract.check(role_first)
    with pytest.raises(ValueError, match="scope 'body'"):
        contract.check(scope="body")(role_first)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier other than 'all'"):
        contract.check(name="all")(role_first)
    assert set(CHECKS) == BUILT_IN
