"""``pytest --contract-url URL``: the contract suite as pytest tests, one per check.

This module is loaded into every pytest run of anyone who installs the package,
so it imports nothing heavy at the top and adds nothing unless ``--contract-url``
is given. The suite runs once per session: on the first item, or, under
pytest-xdist, in the controlling process before the workers start, which then
read its verdicts from a file instead of each running the suite again. Each
item reports its own check; ``contract::run_is_conclusive`` fails when the run
proved nothing (no schema-valid request got a 2xx, see ``contract.diagnosis``).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .results import RunResult

CONCLUSIVE_ITEM = "run_is_conclusive"
_WORKER_INPUT_KEY = "chatstream_contract_verdicts"
_VERDICTS = pytest.StashKey["Verdicts"]()
_RESULT = pytest.StashKey["RunResult"]()
_SEED = pytest.StashKey[int]()


@dataclass
class Verdicts:
    """What each item needs to report: plain data, so it crosses from the xdist controller to its workers."""

    seed: int
    error: str | None = None  # a usage or document error: every item fails with it
    diagnosis: str | None = None
    failures: dict[str, str] = field(default_factory=dict)  # check -> failure blocks
    not_exercised: list[str] = field(default_factory=list)
    rerun: str = ""  # the pytest command that sends the same requests again (contract.rerun)

    @classmethod
    def of(cls, result: RunResult) -> Verdicts:
        from .core.redaction import Redactor
        from .report import failure_block
        from .rerun import plugin_line

        redactor = Redactor(result.secrets)
        failures = {
            name: "\n\n".join(failure_block(r, redactor) for r in result.failures_for(name))
            for name in {f.check for f in result.failures}
        }
        return cls(
            result.seed,
            None,
            redactor.text(result.diagnosis) if result.diagnosis else None,
            failures,
            [name for name in result.stats if result.verdict(name) == "not exercised"],
            plugin_line(result.url, result.seed, result.rerun),
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatstream-contract", "check a live chat-completion server against its contract")
    group.addoption(
        "--contract-url",
        default=None,
        metavar="URL",
        help="base URL of the server under test; adds one test per contract check",
    )
    group.addoption("--contract-spec", default=None, metavar="PATH", help="OpenAPI document (default: bundled)")
    group.addoption(
        "--contract-profile",
        default=None,
        metavar="NAME",
        help="the contract's dialect: seed (default) or openai (see docs/profiles.md)",
    )
    group.addoption(
        "--contract-overlay",
        action="append",
        default=[],
        metavar="FILE",
        help="an OpenAPI Overlay applied on top of the profile (repeatable)",
    )
    group.addoption(
        "--contract-max-examples", type=int, default=50, metavar="N", help="requests generated per phase (default 50)"
    )
    group.addoption("--contract-seed", type=int, default=None, metavar="N", help="seed (default: random, printed)")
    group.addoption(
        "--contract-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="overall deadline per request in seconds (default 10)",
    )
    group.addoption(
        "--contract-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable); secrets are redacted in reports",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("contract_url"):
        return
    if config.getoption("contract_max_examples") < 1:
        raise pytest.UsageError("--contract-max-examples must be at least 1")
    if config.getoption("contract_timeout") <= 0:
        raise pytest.UsageError("--contract-timeout must be greater than 0")
    seed = config.getoption("contract_seed")
    config.stash[_SEED] = seed if seed is not None else random.SystemRandom().randrange(2**32)
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None and _WORKER_INPUT_KEY in worker_input:
        with open(worker_input[_WORKER_INPUT_KEY], encoding="utf-8") as handle:
            config.stash[_VERDICTS] = Verdicts(**json.load(handle))
        config.stash[_SEED] = config.stash[_VERDICTS].seed
    if worker_input is None and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(), "chatstream-contract-xdist")


class _XdistController:
    """Under xdist, run the suite once in the controller and hand each worker the verdicts file."""

    path: str | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if getattr(session.config.option, "numprocesses", None) in (None, 0):
            return  # xdist installed but not distributing: the first item runs the suite
        verdicts = _verdicts(session.config)
        handle, self.path = tempfile.mkstemp(prefix="contract-verdicts-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(asdict(verdicts), out)

    def pytest_configure_node(self, node: Any) -> None:
        if self.path is not None:
            node.workerinput[_WORKER_INPUT_KEY] = self.path

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.path is not None and os.path.exists(self.path):
            os.unlink(self.path)


def pytest_report_header(config: pytest.Config) -> str | None:
    url = config.getoption("contract_url")
    if not url:
        return None
    from .core.redaction import redact_url

    seed = config.stash[_SEED]
    return f"contract-check: {redact_url(url)} seed {seed} (rerun with --contract-seed {seed})"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("contract_url"):
        return
    from .runner import checks_to_run

    suite = ContractSuite.from_parent(session, name="contract", nodeid="contract")
    new_items = [ContractItem.from_parent(suite, name=name) for name in [CONCLUSIVE_ITEM, *checks_to_run(None, None)]]
    # Report the collection like any other, so "collected N items" and reporting plugins count them.
    collected: list[pytest.Item | pytest.Collector] = list(new_items)
    config.hook.pytest_collectreport(report=pytest.CollectReport(suite.nodeid, "passed", None, collected))
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
        verdicts = _verdicts(self.config)
        rerun = f"seed {verdicts.seed}; rerun: {verdicts.rerun or f'--contract-seed {verdicts.seed}'}"
        if verdicts.error:
            raise ContractCheckFailed(verdicts.error)
        if self.name == CONCLUSIVE_ITEM:
            if verdicts.diagnosis:
                raise ContractCheckFailed(f"INCONCLUSIVE: {verdicts.diagnosis}\n\n{rerun}")
            return
        if self.name in verdicts.failures:
            raise ContractCheckFailed(f"{verdicts.failures[self.name]}\n\n{rerun}")
        if self.name in verdicts.not_exercised:
            pytest.skip(f"not exercised: {self.name} judged no exchange in this run, so it proves nothing")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ContractCheckFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "contract", None, f"contract check {self.name}"


def _verdicts(config: pytest.Config) -> Verdicts:
    """Run the suite once per session; a usage or document error becomes the text every item shows."""
    if _VERDICTS not in config.stash:
        from .cli import check_tls
        from .core.profiles import ProfileError, profile
        from .core.redaction import redact_url, url_secrets
        from .core.spec import SpecError
        from .errors import UsageError
        from .headers import parse_header
        from .runner import run
        from .urls import base_url

        seed = config.stash[_SEED]
        try:
            headers = dict(parse_header(text, "--contract-header") for text in config.getoption("contract_header"))
            chosen = profile(config.getoption("contract_profile"), config.getoption("contract_overlay") or [])
            base_url(config.getoption("contract_url"))
            check_tls(config.getoption("contract_url"), config.getoption("contract_timeout"))
            result = run(
                config.getoption("contract_url"),
                spec=config.getoption("contract_spec"),
                profile=chosen,
                max_examples=config.getoption("contract_max_examples"),
                seed=seed,
                timeout=config.getoption("contract_timeout"),
                headers=headers,
            )
        except (UsageError, SpecError, ProfileError) as exc:
            config.stash[_VERDICTS] = Verdicts(seed, error=f"contract-check: error: {redact_url(str(exc))}")
        else:
            result.secrets = (*result.secrets, *url_secrets(config.getoption("contract_url")))
            config.stash[_RESULT] = result
            config.stash[_VERDICTS] = Verdicts.of(result)
    return config.stash[_VERDICTS]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcome = config.stash.get(_RESULT, None) if config.getoption("contract_url") else None
    if outcome is None:
        return
    from .core.redaction import Redactor
    from .report import failure_block, summary_table
    from .rerun import plugin_line

    redactor = Redactor(outcome.secrets)
    if outcome.document_defects:
        terminalreporter.section("contract: defects of the document (not the server's fault)")
        for record in outcome.document_defects:
            terminalreporter.write_line(failure_block(record, redactor))
    terminalreporter.section(f"contract summary (profile {outcome.profile})")
    if outcome.hint:
        terminalreporter.write_line(f"hint: {redactor.text(outcome.hint)}")
    if outcome.aborted:
        terminalreporter.write_line(f"run stopped early: {redactor.text(outcome.aborted)}")
    terminalreporter.write_line(
        redactor.text(summary_table(outcome, plugin_line(outcome.url, outcome.seed, outcome.rerun)))
    )
