"""``pytest --contract-url URL``: the contract suite as pytest tests, one per check.

This module is loaded into every pytest run of anyone who installs the package,
so it imports nothing heavy at the top and adds nothing unless ``--contract-url``
is given. The suite runs once per session, on the first item; each item then
reports its own check.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from .runner import RunResult

_RESULT = pytest.StashKey["RunResult | str"]()
_SEED = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatstream-contract", "check a live chat-completion server against its contract")
    group.addoption("--contract-url", default=None, metavar="URL",
                    help="base URL of the server under test; adds one test per contract check")
    group.addoption("--contract-spec", default=None, metavar="PATH", help="OpenAPI document (default: bundled)")
    group.addoption("--contract-max-examples", type=int, default=50, metavar="N",
                    help="requests generated per phase (default 50)")
    group.addoption("--contract-seed", type=int, default=None, metavar="N", help="seed (default: random, printed)")
    group.addoption("--contract-timeout", type=float, default=10.0, metavar="S",
                    help="overall deadline per request in seconds (default 10)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("contract_url"):
        seed = config.getoption("contract_seed")
        config.stash[_SEED] = seed if seed is not None else random.SystemRandom().randrange(2**32)


def pytest_report_header(config: pytest.Config) -> str | None:
    url = config.getoption("contract_url")
    if not url:
        return None
    return f"contract-check: {url} seed {config.stash[_SEED]} (rerun with --contract-seed {config.stash[_SEED]})"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("contract_url"):
        return
    from .runner import UsageError, select_checks

    try:
        names = select_checks(None, None)
    except UsageError as exc:  # pragma: no cover - only with a broken checks registry
        raise pytest.UsageError(str(exc)) from None
    suite = ContractSuite.from_parent(session, name="contract", nodeid="contract")
    new_items = [ContractItem.from_parent(suite, name=name) for name in names]
    # Report the collection like any other, so "collected N items" and reporting plugins count them.
    config.hook.pytest_collectreport(report=pytest.CollectReport(suite.nodeid, "passed", None, new_items))
    items.extend(new_items)


class ContractSuite(pytest.Collector):
    """The parent of the per-check items; it holds no files."""

    def collect(self) -> Iterator[pytest.Item]:  # pragma: no cover - items are made in the hook above
        return iter(())


class ContractCheckFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ContractItem(pytest.Item):
    """One contract check; passes when the run found no server-blamed failure for it."""

    def runtest(self) -> None:
        outcome = _session_result(self.config)
        if isinstance(outcome, str):
            raise ContractCheckFailed(outcome)
        from .report import Redactor, failure_block

        redactor = Redactor(outcome.secrets)
        records = outcome.failures_for(self.name)
        if records:
            raise ContractCheckFailed("\n\n".join(failure_block(r, redactor) for r in records)
                                      + f"\n\nseed {outcome.seed} (rerun with --contract-seed {outcome.seed})")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ContractCheckFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "contract", None, f"contract check {self.name}"


def _session_result(config: pytest.Config) -> "RunResult | str":
    """Run the suite once per session; a usage or document error becomes the text every item shows."""
    if _RESULT not in config.stash:
        from .runner import UsageError, run
        from .spec import SpecError

        try:
            config.stash[_RESULT] = run(config.getoption("contract_url"), spec=config.getoption("contract_spec"),
                                        max_examples=config.getoption("contract_max_examples"),
                                        seed=config.stash[_SEED], timeout=config.getoption("contract_timeout"))
        except (UsageError, SpecError) as exc:
            config.stash[_RESULT] = f"contract-check: error: {exc}"
    return config.stash[_RESULT]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcome = config.stash.get(_RESULT, None) if config.getoption("contract_url") else None
    if outcome is None or isinstance(outcome, str):
        return
    from .report import Redactor, failure_block, summary_table

    redactor = Redactor(outcome.secrets)
    if outcome.document_defects:
        terminalreporter.section("contract: defects of the document (not the server's fault)")
        for record in outcome.document_defects:
            terminalreporter.write_line(failure_block(record, redactor))
    terminalreporter.section("contract summary")
    if outcome.aborted:
        terminalreporter.write_line(f"run stopped early: {outcome.aborted}")
    terminalreporter.write_line(summary_table(outcome))
