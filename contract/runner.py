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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .client import Limits, Timeout, http_client, is_costly, send
from .determinism import without_local_constants
from .diagnosis import Answer, diagnose
from .errors import Unreachable, UsageError
from .exchange import Exchange, Failure, PreparedRequest
from .redaction import secret_values
from .results import CheckStats, FailureRecord, PhaseSummary, RunResult
from .spec import Operation, Spec, load_spec

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
TRANSPORT_CHECK = "transport_ok"  # where a reset, a timeout, a cap or garbage bytes are reported
OPT_IN_FOR_ACCEPT_VALID = "valid_request_accepted"
_ABORT_AFTER_TIMEOUTS = 2  # consecutive timeouts before the run stops sending
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
    loaded = spec if isinstance(spec, Spec) else load_spec(spec)
    operation = loaded.operation("/chat/completions", "post")
    selected = select_checks(checks, exclude_checks, accept_valid=accept_valid, max_ttft_ms=max_ttft_ms)
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


@dataclass
class _Session:
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
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _consecutive_timeouts: int = 0

    def run(self, phases: list[str]) -> RunResult:
        from .checks import CheckContext, stream_default, stream_terminator
        from .validate import ContractValidator

        started = time.monotonic()
        self.url = operation_url(self.base, self.operation)
        self.validator = ContractValidator(self.spec)
        self.context_fields: dict[str, Any] = dict(
            spec=self.spec,
            validator=self.validator,
            operation=self.operation,
            findings=_lint_findings(self.spec),
            max_ttft_ms=self.max_ttft_ms,
            accept_valid=self.accept_valid,
        )
        self.make_context = CheckContext
        plain = CheckContext(**self.context_fields)
        self.stream_default = stream_default(plain)
        self.terminator = stream_terminator(plain)
        self.result = RunResult(
            url=self.base,
            spec_source=self.spec.source,
            seed=self.seed,
            checks=list(self.selected),
            workers=self.workers,
            secrets=secret_values(self.headers),
            stats={name: CheckStats() for name in self.selected},
        )
        # Each phase keeps its own minimal failures, so a run with phases side by side finds the
        # same ones as a sequential run; the earliest generated phase's record of a check is the one
        # reported, and the coverage phase's only when no generated phase found that check.
        self.phase_records: dict[str, dict[str, FailureRecord]] = {name: {} for name in phases}
        self.timeout_recorded = False
        self.document_keys: set[tuple[str, str]] = set()
        self.samples: dict[str, list[float]] = {"ttfb_ms": [], "ttft_ms": [], "total_ms": []}
        with http_client(max(2, self.workers * 2)) as self.client:
            if self.workers > 1 and len(phases) > 1:
                # Phases run side by side; inside a phase Hypothesis stays sequential so shrinking works.
                with ThreadPoolExecutor(max_workers=min(self.workers, len(phases))) as pool:
                    summaries = list(pool.map(self._run_phase, phases, range(len(phases))))
            else:
                summaries = [self._run_phase(name, index) for index, name in enumerate(phases)]
        self.result.phases = summaries
        # A shrunk failure from a generated phase says more than the coverage request that found it too.
        for name in sorted(phases, key=lambda phase: phase == "coverage"):
            for check, record in self.phase_records[name].items():
                if not self.result.failures_for(check):
                    self.result.failures.append(record)
        if not self.result.aborted:
            self.result.diagnosis = diagnose(
                self.base,
                self.operation.path,
                self.result.valid_answers,
                {name: stats.judged for name, stats in self.result.stats.items()},
                self.selected,
            )
        for summary in summaries:
            summary.failing_checks = len({f.check for f in self.result.failures if f.phase == summary.name})
        order = {name: position for position, name in enumerate(self.selected)}
        self.result.failures.sort(key=lambda f: order.get(f.check, len(order)))
        self.result.timings = {name: _percentiles(values) for name, values in self.samples.items()}
        self.result.seconds = round(time.monotonic() - started, 3)
        return self.result

    # -- one phase: Hypothesis passes until nothing new fails ----------------------------------
    def _run_phase(self, phase: str, index: int) -> PhaseSummary:
        summary = PhaseSummary(phase)
        if self.progress:
            self.progress(summary, False)
        began = time.monotonic()
        if phase == "coverage":
            self._run_coverage(summary)
        for attempt in range(len(self.selected) + 1 if phase != "coverage" else 0):
            if self.result.aborted:
                break
            with self._lock:
                raising = [name for name in self.selected if name not in self.phase_records[phase]]
            if not raising:
                break
            found = self._hypothesis_pass(
                phase, self._strategy(phase), raising, self.seed + 7919 * index + attempt, summary
            )
            summary.failing_checks = len(self.phase_records[phase])
            if not found:
                break
        summary.seconds = round(time.monotonic() - began, 3)
        summary.failing_checks = len(self.phase_records[phase])
        if self.progress:
            self.progress(summary, True)
        return summary

    def _run_coverage(self, summary: PhaseSummary) -> None:
        """Send each coverage request once; the first server-blamed failure of each check is kept as sent."""
        from .coverage import coverage_cases

        validator_accepts = self.validator.validate_request
        for case in coverage_cases():
            if self.result.aborted:
                break
            if validator_accepts(case.body):
                continue  # another document: this feature is not part of its contract
            request = self._prepare("coverage", case.body)
            exchange, failures = self._exchange("coverage", request, case.with_counterpart)
            summary.requests += 1 + (1 if case.with_counterpart else 0)
            if is_costly(exchange):
                continue
            with self._lock:
                for failure in failures:
                    if failure.blame == "server" and failure.check not in self.phase_records["coverage"]:
                        self.phase_records["coverage"][failure.check] = FailureRecord.of(failure, "coverage", exchange)
                summary.failing_checks = len(self.phase_records["coverage"])

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
            if self.result.aborted:
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
                return  # recorded as it is; see _tally
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
            return self._record_minimal(phase, caught)
        return set()

    def _record_minimal(self, phase: str, caught: Iterable[_CheckFailed]) -> set[str]:
        new: set[str] = set()
        with self._lock:
            for error in caught:
                check = error.failure.check
                if check in self.phase_records[phase]:
                    continue
                new.add(check)
                self.phase_records[phase][check] = FailureRecord.of(error.failure, phase, error.exchange)
        return new

    # -- one request ---------------------------------------------------------------------------
    def _prepare(self, phase: str, payload: Any) -> PreparedRequest:
        headers = {**self.headers}
        if phase == "negative":
            headers["Content-Type"] = payload.content_type
            return PreparedRequest(
                "POST",
                self.url,
                headers,
                payload.body,
                payload.raw_body,
                kind="negative",
                broken_rule=payload.broken_rule,
            )
        headers["Content-Type"] = "application/json"
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        kind = "realistic" if phase == "coverage" else phase
        return PreparedRequest("POST", self.url, headers, payload, raw, kind=kind)  # type: ignore[arg-type]

    def _exchange(self, phase: str, request: PreparedRequest, with_counterpart: bool) -> tuple[Exchange, list[Failure]]:
        from .checks import judge

        counterpart_request = _counterpart(request, self.stream_default) if with_counterpart else None
        counterpart: Exchange | None
        if counterpart_request is not None and self.workers > 1:
            with ThreadPoolExecutor(max_workers=2) as pool:
                first = pool.submit(self._send, request)
                second = pool.submit(self._send, counterpart_request)
                exchange, counterpart = first.result(), second.result()
        else:
            exchange = self._send(request)
            counterpart = self._send(counterpart_request) if counterpart_request is not None else None
        context = self.make_context(**self.context_fields, counterpart=counterpart)
        outcome = judge(context, exchange, self.selected)
        self._tally(phase, exchange, outcome.failures, outcome.judged, context)
        return exchange, outcome.failures

    def _send(self, request: PreparedRequest) -> Exchange:
        exchange = send(self.client, request, timeout=self.timeout, limits=self.limits, terminator=self.terminator)
        with self._lock:
            self.result.requests_sent += 1
            for name, value in (
                ("ttfb_ms", exchange.timings.ttfb_ms),
                ("ttft_ms", exchange.timings.ttft_ms),
                ("total_ms", exchange.timings.total_ms),
            ):
                if value is not None:
                    self.samples[name].append(value)
        return exchange

    def _tally(
        self, phase: str, exchange: Exchange, failures: list[Failure], judged: frozenset[str], context: Any
    ) -> None:
        from .checks import is_refusal, request_is_valid

        timed_out = is_costly(exchange)
        valid = phase != "negative" and request_is_valid(context, exchange)
        with self._lock:
            failed = {f.check for f in failures if f.blame == "server"}
            for name in self.selected:
                stats = self.result.stats[name]
                if name in failed:
                    stats.failed += 1
                elif name in judged:
                    stats.passed += 1
            if valid:
                self.result.valid_answers[_answer(exchange)] += 1
            if valid and is_refusal(context, exchange):
                self.result.refused_valid += 1
                self.result.refusals[_answer(exchange)] += 1
            for failure in failures:
                if failure.blame == "document" and (failure.check, failure.message) not in self.document_keys:
                    self.document_keys.add((failure.check, failure.message))
                    self.result.document_defects.append(FailureRecord.of(failure, phase, exchange))
            self._consecutive_timeouts = self._consecutive_timeouts + 1 if timed_out else 0
            transport = [f for f in failures if f.check == TRANSPORT_CHECK]
            if timed_out and transport and not self.timeout_recorded:
                # Timeouts are not shrunk: each step would cost a full timeout.
                self.timeout_recorded = True
                self.phase_records[phase][TRANSPORT_CHECK] = FailureRecord.of(transport[0], phase, exchange)
            if self._consecutive_timeouts >= _ABORT_AFTER_TIMEOUTS and not self.result.aborted:
                self.result.aborted = (
                    f"{self._consecutive_timeouts} requests in a row timed out or hit a limit "
                    f"({exchange.transport_error}); stopped sending"
                )


def _answer(exchange: Exchange) -> Answer:
    """The status and the error's ``code`` (or, with no HTTP answer, what went wrong)."""
    if exchange.status is None:
        return Answer(None, (exchange.transport_error or "no response").split(":", 1)[0][:60])
    body = exchange.json
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return Answer(exchange.status, code if isinstance(code, str) else None)


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


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "count": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))], 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "count": len(ordered)}
