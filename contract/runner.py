"""Drive a live server: generate requests, send them, check the answers, shrink failures.

The coverage phase comes first: a fixed list of requests (``contract.coverage``)
that reaches every semantic rule whatever the seed; its failures are reported
as sent, since each request is already small. Each later phase (schema-driven,
realistic, negative) is one Hypothesis test. Its
body sends the drawn request and raises when a server-blamed check fails, so
Hypothesis shrinks the request to a minimal one. Every check raises its own
exception type, so Hypothesis tells the checks apart and shrinks each failure
separately (``report_multiple_bugs``); a check, once it has a minimal example,
stops raising, and the phase runs again to find failures the first one hid.
Document-blamed failures and timeouts never raise: the first is not the
server's fault, and shrinking against a server that does not answer would cost
a timeout per step.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .client import Limits, Timeout, http_client, is_costly, send
from .determinism import without_local_constants
from .errors import Unreachable, UsageError
from .exchange import Exchange, Failure, PreparedRequest
from .profiles import Profile
from .redaction import secret_values
from .results import CheckStats, FailureRecord, PhaseSummary, RunResult
from .spec import Operation, Spec, load_spec
from .tally import RunTally

# Importable from here as before: the records and errors of a run.
__all__ = [
    "PHASES",
    "CheckStats",
    "FailureRecord",
    "PhaseSummary",
    "RunResult",
    "Unreachable",
    "UsageError",
    "operation_url",
    "probe",
    "run",
    "select_checks",
]

PHASES = ("coverage", "schema", "realistic", "negative")
OPT_IN_FOR_ACCEPT_VALID = "valid_request_accepted"
# Requests one Hypothesis phase may send, shrinking included: factor x --max-examples + extra. Shrinking
# against a broken server could otherwise send a thousand requests for --max-examples 10.
SHRINK_BUDGET_FACTOR = 6
SHRINK_BUDGET_EXTRA = 40

DEFAULT_LIMITS = Limits()  # how much of each response a run reads, unless told otherwise


# -- the run ----------------------------------------------------------------------------------


def run(
    url: str,
    *,
    spec: Spec | str | Path | None = None,
    profile: Profile | str | None = None,
    max_examples: int = 50,
    seed: int | None = None,
    workers: int = 1,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
    checks: Sequence[str] | None = None,
    exclude_checks: Sequence[str] | None = None,
    accept_valid: bool = False,
    max_ttft_ms: float | None = None,
    progress: Callable[[PhaseSummary, bool], None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    phases: Sequence[str] = PHASES,
) -> RunResult:
    """Check the server at ``url`` against the contract and return what broke.

    Raises :class:`UsageError` (one-line message) for a bad URL, an unknown check or
    an unreachable server, and :class:`contract.spec.SpecError` for a bad document.
    """
    base = _check_url(url)
    loaded = spec if isinstance(spec, Spec) else load_spec(spec, profile)
    operation = loaded.operation("/chat/completions", "post")
    selected = select_checks(checks, exclude_checks, accept_valid=accept_valid, max_ttft_ms=max_ttft_ms)
    if not checks and loaded.dialect.usage_when_asked and DIALECT_CHECK not in (exclude_checks or ()):
        selected = _in_registry_order([*selected, DIALECT_CHECK])
    unknown_phase = [p for p in phases if p not in PHASES]
    if unknown_phase:
        raise UsageError(f"unknown phase {unknown_phase[0]!r} (known: {', '.join(PHASES)})")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if max_examples < 1:
        raise UsageError("max_examples must be at least 1")
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    probe(base, timeout)
    chosen_seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    session = _Session(
        base=base,
        spec=loaded,
        operation=operation,
        selected=selected,
        seed=chosen_seed,
        max_examples=max_examples,
        workers=workers,
        timeout=Timeout(timeout),
        limits=limits,
        headers=dict(headers or {}),
        accept_valid=accept_valid,
        max_ttft_ms=max_ttft_ms,
        progress=progress,
    )
    from .strategies import reused_schema_strategies

    with without_local_constants(), reused_schema_strategies():
        return session.run(list(phases))


def select_checks(
    checks: Sequence[str] | None,
    exclude_checks: Sequence[str] | None,
    *,
    accept_valid: bool = False,
    max_ttft_ms: float | None = None,
) -> list[str]:
    """The checks to run: the defaults (or exactly ``checks``), minus ``exclude_checks``, plus opt-ins.

    Without ``--max-ttft-ms`` the time-to-first-token check has no limit to hold a server to, so it
    is left out rather than reported as passing.
    """
    from . import checks as registry

    try:
        names = registry.select_checks(checks or None, exclude_checks or ())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not checks:
        if accept_valid and OPT_IN_FOR_ACCEPT_VALID not in (exclude_checks or ()):
            names.append(OPT_IN_FOR_ACCEPT_VALID)
        if max_ttft_ms is None and "ttft_within_limit" in names:
            names.remove("ttft_within_limit")
    return names


DIALECT_CHECK = "usage_chunk_as_asked"  # run by default under a profile whose usage chunk waits to be asked


def _in_registry_order(names: list[str]) -> list[str]:
    from . import checks as registry

    return [name for name in registry.CHECKS if name in names]


def probe(base: str, timeout: float) -> None:
    """Fail fast, with one line, when nothing listens at the URL."""
    parts = urlsplit(base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=min(timeout, 5.0)):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise Unreachable(f"cannot reach {base}: {reason}") from None


def operation_url(base: str, operation: Operation) -> str:
    """``http://h:p`` and ``http://h:p/v1`` both work: the operation's path is appended to the base."""
    return base.rstrip("/") + operation.path


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise UsageError(f"URL {url!r} has no host")
    try:
        _ = parts.port  # urllib checks the port only when it is read
    except ValueError:
        raise UsageError(f"URL {url!r} has an invalid port") from None
    if parts.query or parts.fragment:
        raise UsageError(f"URL {url!r} must be a base URL without query or fragment")
    return url.rstrip("/")


# -- internals --------------------------------------------------------------------------------


class _CheckFailed(Exception):
    """Raised inside a Hypothesis test so it shrinks; one subclass per check (see module doc)."""

    def __init__(self, failure: Failure, exchange: Exchange) -> None:
        super().__init__(f"{failure.check}: {failure.message}")
        self.failure = failure
        self.exchange = exchange


class _Stopped(Exception):
    """Raised inside a Hypothesis test once the run has stopped, so Hypothesis stops generating."""


_FAILURE_TYPES: dict[str, type[_CheckFailed]] = {}
_FAILURE_TYPES_LOCK = threading.Lock()


def _failure_type(check: str) -> type[_CheckFailed]:
    with _FAILURE_TYPES_LOCK:
        if check not in _FAILURE_TYPES:
            _FAILURE_TYPES[check] = type(f"CheckFailed[{check}]", (_CheckFailed,), {})
        return _FAILURE_TYPES[check]


@dataclass(frozen=True)
class _RunPlan:
    """What every request and judgement of a run needs, worked out once from the document and the options."""

    url: str
    validator: Any  # ContractValidator
    context_fields: dict[str, Any]  # CheckContext's fields but the counterpart, which each exchange has
    stream_default: bool
    terminator: str


def _plan(base: str, spec: Spec, operation: Operation, max_ttft_ms: float | None, accept_valid: bool) -> _RunPlan:
    from .checks import CheckContext, stream_default, stream_terminator
    from .validate import ContractValidator

    validator = ContractValidator(spec)
    fields: dict[str, Any] = dict(
        spec=spec,
        validator=validator,
        operation=operation,
        findings=_lint_findings(spec),
        max_ttft_ms=max_ttft_ms,
        accept_valid=accept_valid,
    )
    plain = CheckContext(**fields)
    return _RunPlan(operation_url(base, operation), validator, fields, stream_default(plain), stream_terminator(plain))


@dataclass
class _Session:
    """One run: the phases, their Hypothesis passes, and the requests they send."""

    base: str
    spec: Spec
    operation: Operation
    selected: list[str]
    seed: int
    max_examples: int
    workers: int
    timeout: Timeout
    limits: Limits
    headers: dict[str, str]
    accept_valid: bool
    max_ttft_ms: float | None
    progress: Callable[[PhaseSummary, bool], None] | None

    def run(self, phases: list[str]) -> RunResult:
        started = time.monotonic()
        self.plan = _plan(self.base, self.spec, self.operation, self.max_ttft_ms, self.accept_valid)
        result = RunResult(
            url=self.base,
            spec_source=self.spec.source,
            seed=self.seed,
            profile=self.spec.profile.label,
            profile_options=tuple(self.spec.profile.options()),
            checks=list(self.selected),
            workers=self.workers,
            secrets=secret_values(self.headers),
            stats={name: CheckStats() for name in self.selected},
        )
        self.tally = RunTally(result, phases, self.selected)
        with http_client(max(2, self.workers * 2)) as self.client:
            if self.workers > 1 and len(phases) > 1:
                # Phases run side by side; inside a phase Hypothesis stays sequential so shrinking works.
                with ThreadPoolExecutor(max_workers=min(self.workers, len(phases))) as pool:
                    summaries = list(pool.map(self._run_phase, phases, range(len(phases))))
            else:
                summaries = [self._run_phase(name, index) for index, name in enumerate(phases)]
        return self.tally.finish(summaries, self.base, self.operation.path, time.monotonic() - started)

    # -- one phase: Hypothesis passes until nothing new fails ----------------------------------
    def _run_phase(self, phase: str, index: int) -> PhaseSummary:
        summary = PhaseSummary(phase)
        if self.progress:
            self.progress(summary, False)
        began = time.monotonic()
        if phase == "coverage":
            self._run_coverage(summary)
        for attempt in range(len(self.selected) + 1 if phase != "coverage" else 0):
            if self.tally.aborted:
                break
            raising = self.tally.not_yet_failed(phase)
            if not raising:
                break
            found = self._hypothesis_pass(
                phase, self._strategy(phase), raising, self.seed + 7919 * index + attempt, summary
            )
            summary.failing_checks = self.tally.failed_in(phase)
            if not found:
                break
        summary.seconds = round(time.monotonic() - began, 3)
        summary.failing_checks = self.tally.failed_in(phase)
        if self.progress:
            self.progress(summary, True)
        return summary

    def _run_coverage(self, summary: PhaseSummary) -> None:
        """Send each coverage request once; the first server-blamed failure of each check is kept as sent."""
        from .coverage import coverage_cases

        validator_accepts = self.plan.validator.validate_request
        for case in coverage_cases():
            if self.tally.aborted:
                break
            if validator_accepts(case.body):
                continue  # another document: this feature is not part of its contract
            request = self._prepare("coverage", case.body)
            exchange, failures = self._exchange("coverage", request, case.with_counterpart)
            summary.requests += 1 + (1 if case.with_counterpart else 0)
            if is_costly(exchange):
                continue
            self.tally.keep_first("coverage", failures, exchange)
            summary.failing_checks = self.tally.failed_in("coverage")

    def _strategy(self, phase: str) -> Any:
        from hypothesis import strategies as st

        from . import strategies

        if phase == "schema":
            return st.tuples(strategies.schema_requests(self.spec, self.operation), st.just(False))
        if phase == "realistic":
            return st.tuples(strategies.realistic_requests(self.spec), st.booleans())
        return st.tuples(strategies.negative_requests(self.spec, self.operation), st.just(False))

    def _hypothesis_pass(
        self, phase: str, strategy: Any, raising: list[str], seed: int, summary: PhaseSummary
    ) -> set[str]:
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from hypothesis import seed as seed_decorator

        budget = SHRINK_BUDGET_FACTOR * self.max_examples + SHRINK_BUDGET_EXTRA
        failed_before: dict[tuple[bytes, bool], _CheckFailed] = {}

        @seed_decorator(seed)
        @settings(
            max_examples=self.max_examples,
            derandomize=False,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate, Phase.shrink],
            report_multiple_bugs=True,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @given(strategy)
        def exercise(drawn: tuple[Any, bool]) -> None:
            if self.tally.aborted:
                raise _Stopped()
            payload, with_counterpart = drawn
            request = self._prepare(phase, payload)
            key = (request.raw_body, with_counterpart)
            if summary.requests >= budget:
                # Over budget: send nothing more. A request that failed before fails the same way
                # (Hypothesis replays its minimal example); anything new counts as passing.
                if key in failed_before:
                    raise failed_before[key]
                return
            exchange, failures = self._exchange(phase, request, with_counterpart)
            summary.requests += 1 + (1 if with_counterpart else 0)
            if is_costly(exchange):
                return  # recorded as it is; see RunTally.judged
            for failure in failures:
                if failure.blame == "server" and failure.check in raising:
                    failed_before[key] = _failure_type(failure.check)(failure, exchange)
                    raise failed_before[key]

        try:
            exercise()
        except BaseException as exc:  # noqa: BLE001 - Hypothesis wraps ours in groups; anything else re-raises
            caught = list(_check_failures(exc))
            if not caught and not _contains(exc, _Stopped):
                raise
            return self.tally.keep_minimal(phase, ((error.failure, error.exchange) for error in caught))
        return set()

    # -- one request ---------------------------------------------------------------------------
    def _prepare(self, phase: str, payload: Any) -> PreparedRequest:
        headers = {**self.headers}
        if phase == "negative":
            headers["Content-Type"] = payload.content_type
            return PreparedRequest(
                "POST",
                self.plan.url,
                headers,
                payload.body,
                payload.raw_body,
                kind="negative",
                broken_rule=payload.broken_rule,
            )
        headers["Content-Type"] = "application/json"
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        kind = "realistic" if phase == "coverage" else phase
        return PreparedRequest("POST", self.plan.url, headers, payload, raw, kind=kind)  # type: ignore[arg-type]

    def _exchange(self, phase: str, request: PreparedRequest, with_counterpart: bool) -> tuple[Exchange, list[Failure]]:
        from .checks import CheckContext, is_refusal, judge, request_is_valid

        counterpart_request = _counterpart(request, self.plan.stream_default) if with_counterpart else None
        counterpart: Exchange | None
        if counterpart_request is not None and self.workers > 1:
            with ThreadPoolExecutor(max_workers=2) as pool:
                first = pool.submit(self._send, request)
                second = pool.submit(self._send, counterpart_request)
                exchange, counterpart = first.result(), second.result()
        else:
            exchange = self._send(request)
            counterpart = self._send(counterpart_request) if counterpart_request is not None else None
        context = CheckContext(**self.plan.context_fields, counterpart=counterpart)
        outcome = judge(context, exchange, self.selected)
        valid = phase != "negative" and request_is_valid(context, exchange)
        refused = valid and is_refusal(context, exchange)
        self.tally.judged(phase, exchange, outcome.failures, outcome.judged, valid, refused)
        return exchange, outcome.failures

    def _send(self, request: PreparedRequest) -> Exchange:
        exchange = send(self.client, request, timeout=self.timeout, limits=self.limits, terminator=self.plan.terminator)
        self.tally.sent(exchange)
        return exchange


def _counterpart(request: PreparedRequest, stream_default: bool = True) -> PreparedRequest | None:
    """The same request with the other ``stream`` value (absent counts as the document's default)."""
    if not isinstance(request.body, dict):
        return None
    body = dict(request.body)
    body["stream"] = not bool(request.body.get("stream", stream_default))
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return PreparedRequest(request.method, request.url, dict(request.headers), body, raw, kind=request.kind)


def _check_failures(exc: BaseException) -> Iterable[_CheckFailed]:
    """Our failures inside whatever Hypothesis raised (one, a group, a flaky group)."""
    if isinstance(exc, _CheckFailed):
        yield exc
    elif isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _check_failures(inner)


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, kind):
        return True
    return isinstance(exc, BaseExceptionGroup) and any(_contains(inner, kind) for inner in exc.exceptions)


class _LintOnFirstUse(Sequence[Any]):
    """The document's own defects, so checks can blame the document, worked out when first read.

    Checks read them only to explain a failure, so a run against a conforming server never pays
    for the lint and its imports (a third of a second). The refusal rule is left out: it asks the
    installed servers' request checks, which says nothing about the server under test and costs a
    search at every run.
    """

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        self._findings: list[Any] | None = None
        self._lock = threading.Lock()

    def _all(self) -> list[Any]:
        with self._lock:
            if self._findings is None:
                from .lint import lint_spec

                self._findings = list(lint_spec(self._spec, refusers=()))
            return self._findings

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())


def _lint_findings(spec: Spec) -> Sequence[Any]:
    return _LintOnFirstUse(spec)
