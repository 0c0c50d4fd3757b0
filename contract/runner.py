"""Drive a live server: generate requests, send them, check the answers, reduce failures.

The coverage phase comes first: a fixed list of requests (``contract.coverage``)
that reaches every semantic rule whatever the seed. Each later phase (schema-driven,
realistic, negative) is one Hypothesis test that sends ``max_examples`` drawn
requests and judges every answer with every check; it never raises for a
failure, so one failing check neither stops the search nor hides another. For
each check that failed in a phase, coverage included, the smallest failing
request is then reduced on its own budget (``contract.reduce``: fields, items,
strings, each try a request the document accepts), and the reduced exchange
gives every check it still fails its minimal example. Negative requests are reported as sent, the smallest that
failed: they break one rule on purpose, and reducing them could change which.
Document-blamed failures and timeouts are never reduced: the first is not the
server's fault, and reducing against a server that does not answer would cost
a timeout per try.
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
from .core.dialect import Dialect
from .core.exchange import Exchange, Failure, PreparedRequest
from .core.profiles import Profile
from .core.redaction import secret_values
from .core.spec import Operation, Spec, load_spec
from .determinism import without_local_constants
from .errors import Unreachable, UsageError
from .rerun import ALL_PHASES, RerunOptions
from .results import CheckStats, FailureRecord, PhaseSummary, RunResult
from .tally import RunTally
from .urls import base_url

# Importable from here as before: the records and errors of a run.
__all__ = [
    "PHASES",
    "CheckStats",
    "FailureRecord",
    "PhaseSummary",
    "RunResult",
    "Unreachable",
    "UsageError",
    "checks_to_run",
    "operation_url",
    "probe",
    "run",
]

PHASES = ALL_PHASES
OPT_IN_FOR_ACCEPT_VALID = "valid_request_accepted"
# Requests a failing check's reduction may send, and all reductions of one phase together: at most
# REDUCE_PER_PHASE_FACTOR x --max-examples (but never less than one check's), so a run against a broken
# server sends at most about twice the requests a run against a correct one does.
REDUCE_PER_CHECK = 50
REDUCE_PER_PHASE_FACTOR = 2

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
    an unreachable server, and :class:`contract.core.spec.SpecError` for a bad document.
    """
    base = base_url(url)
    loaded = spec if isinstance(spec, Spec) else load_spec(spec, profile)
    operation = loaded.operation("/chat/completions", "post")
    dialect = Dialect.of(loaded)
    selected = checks_to_run(checks, exclude_checks, accept_valid=accept_valid, max_ttft_ms=max_ttft_ms)
    if not checks and dialect.usage_when_asked and DIALECT_CHECK not in (exclude_checks or ()):
        selected = _in_registry_order([*selected, DIALECT_CHECK])
    unknown_phase = [p for p in phases if p not in PHASES]
    if unknown_phase:
        raise UsageError(f"unknown phase {unknown_phase[0]!r} (known: {', '.join(PHASES)})")
    if not phases or len(set(phases)) != len(phases):
        raise UsageError(f"give each phase at most once, and at least one (known: {', '.join(PHASES)})")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if max_examples < 1:
        raise UsageError("max_examples must be at least 1")
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    probe(base, timeout)
    chosen_seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    rerun = RerunOptions(
        spec=_users_document(spec, loaded),
        profile_options=tuple(loaded.profile.options()),
        max_examples=max_examples,
        phases=tuple(phases),
        checks=tuple(checks or ()),
        exclude_checks=tuple(exclude_checks or ()),
        accept_valid=accept_valid,
        max_ttft_ms=max_ttft_ms,
        timeout=timeout,
        header_names=tuple(headers or {}),
    )
    session = _Session(
        base=base,
        spec=loaded,
        operation=operation,
        dialect=dialect,
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
        rerun=rerun,
    )
    from .strategies import reused_schema_strategies

    with without_local_constants(), reused_schema_strategies():
        return session.run(list(phases))


def _users_document(given: Spec | str | Path | None, loaded: Spec) -> str | None:
    """The document for the rerun line: the path given, or None for the bundled one."""
    from .core.spec import default_spec_path

    if given is None or loaded.source == str(default_spec_path()):
        return None
    return loaded.source


def checks_to_run(
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


# -- internals --------------------------------------------------------------------------------


class _Stopped(Exception):
    """Raised inside a Hypothesis test once the run has stopped, so Hypothesis stops generating."""


@dataclass(frozen=True)
class _Found:
    """The smallest exchange of a phase's generated ones that failed a check, to reduce from."""

    exchange: Exchange
    failures: list[Failure]
    with_counterpart: bool


@dataclass(frozen=True)
class _RunPlan:
    """What every request and judgement of a run needs, worked out once from the document and the options."""

    url: str
    validator: Any  # ContractValidator
    context_fields: dict[str, Any]  # CheckContext's fields but the counterpart, which each exchange has
    stream_default: bool
    terminator: str


def _plan(
    base: str, spec: Spec, operation: Operation, dialect: Dialect, max_ttft_ms: float | None, accept_valid: bool
) -> _RunPlan:
    from .checks import CheckContext, stream_default, stream_terminator
    from .core.validate import ContractValidator

    validator = ContractValidator(spec)
    fields: dict[str, Any] = dict(
        spec=spec,
        validator=validator,
        operation=operation,
        dialect=dialect,
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
    dialect: Dialect
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
    rerun: RerunOptions

    def run(self, phases: list[str]) -> RunResult:
        started = time.monotonic()
        self.plan = _plan(self.base, self.spec, self.operation, self.dialect, self.max_ttft_ms, self.accept_valid)
        result = RunResult(
            url=self.base,
            spec_source=self.spec.source,
            seed=self.seed,
            profile=self.spec.profile.label,
            rerun=self.rerun,
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
            found = self._run_coverage(summary)
        elif self.tally.aborted:
            found = {}
        else:
            found = self._generate(phase, self._strategy(phase), self.seed + 7919 * index, summary)
        self._reduce_found(phase, found, summary)
        summary.seconds = round(time.monotonic() - began, 3)
        summary.failing_checks = self.tally.failed_in(phase)
        if self.progress:
            self.progress(summary, True)
        return summary

    def _run_coverage(self, summary: PhaseSummary) -> dict[str, _Found]:
        """Send each coverage request once; per failed check, the smallest exchange that failed it."""
        from .coverage import coverage_cases

        found: dict[str, _Found] = {}
        errors_of = self.plan.validator.validate_request
        for case in coverage_cases():
            if self.tally.aborted:
                break
            if errors_of(case.body):
                continue  # another document: this feature is not part of its contract
            request = self._prepare("coverage", case.body)
            exchange, failures = self._exchange("coverage", request, case.with_counterpart)
            summary.requests += 1 + (1 if case.with_counterpart else 0)
            if not is_costly(exchange):
                _note_smallest(found, _Found(exchange, failures, case.with_counterpart))
            summary.failing_checks = self.tally.failed_in("coverage")
        return found

    def _strategy(self, phase: str) -> Any:
        from hypothesis import strategies as st

        from . import strategies
        from .negative import negative_requests

        if phase == "schema":
            return st.tuples(strategies.schema_requests(self.spec, self.operation), st.just(False))
        if phase == "realistic":
            return st.tuples(strategies.realistic_requests(self.spec), st.booleans())
        return st.tuples(negative_requests(self.spec, self.operation), st.just(False))

    def _generate(self, phase: str, strategy: Any, seed: int, summary: PhaseSummary) -> dict[str, _Found]:
        """Send ``max_examples`` drawn requests; per failed check, the smallest exchange that failed it."""
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from hypothesis import seed as seed_decorator

        found: dict[str, _Found] = {}
        cap = 3 * self.max_examples  # a pair counts twice; Hypothesis never calls more than max_examples

        @seed_decorator(seed)
        @settings(
            max_examples=self.max_examples,
            derandomize=False,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @given(strategy)
        def exercise(drawn: tuple[Any, bool]) -> None:
            if self.tally.aborted:
                raise _Stopped()
            if summary.requests >= cap:
                return
            payload, with_counterpart = drawn
            request = self._prepare(phase, payload)
            exchange, failures = self._exchange(phase, request, with_counterpart)
            summary.requests += 1 + (1 if with_counterpart else 0)
            if not is_costly(exchange):  # a timeout is recorded as it is; see RunTally.judged
                _note_smallest(found, _Found(exchange, failures, with_counterpart))

        try:
            exercise()
        except BaseException as exc:  # noqa: BLE001 - Hypothesis may wrap ours in a group; anything else re-raises
            if not _contains(exc, _Stopped):
                raise
        return found

    def _reduce_found(self, phase: str, found: dict[str, _Found], summary: PhaseSummary) -> None:
        """Give each failed check a minimal example: reduce its smallest failing request, within budget."""
        from .core.validate import JSON, pick_media

        media = pick_media(self.operation.request_body, JSON)
        left = max(REDUCE_PER_CHECK, REDUCE_PER_PHASE_FACTOR * self.max_examples)
        for check in [name for name in self.selected if name in found]:
            start = found[check]
            if self.tally.has_example(phase, check):
                continue  # the reduction of another check's request reduced this one's too
            reducible = isinstance(start.exchange.request.body, dict) and phase != "negative"
            if media is None or not reducible or left <= 0 or self.tally.aborted:
                self.tally.keep_as_sent(phase, start.failures, start.exchange)
                continue
            best, asked = self._reduce(phase, check, start, media.pointer, min(REDUCE_PER_CHECK, left), summary)
            left -= asked
            self.tally.keep_minimal(phase, ((failure, best.exchange) for failure in best.failures))

    def _reduce(
        self, phase: str, check: str, start: _Found, pointer: str, budget: int, summary: PhaseSummary
    ) -> tuple[_Found, int]:
        """The smallest exchange that still fails ``check``, and the requests it took to find it."""
        from .reduce import StopReducing, reduce_json

        best = start

        def still_fails(candidate: Any) -> bool:
            nonlocal best
            if self.tally.aborted:
                raise StopReducing()
            exchange, failures = self._exchange(phase, self._prepare(phase, candidate), start.with_counterpart)
            summary.requests += 1 + (1 if start.with_counterpart else 0)
            if is_costly(exchange):
                raise StopReducing()  # each further try would cost a timeout
            if check not in _reducible(failures):
                return False
            best = _Found(exchange, failures, start.with_counterpart)
            return True

        def allowed(candidate: Any) -> bool:
            return bool(self.plan.validator.is_valid_at(pointer, candidate))

        reduction = reduce_json(start.exchange.request.body, still_fails, allowed, budget)
        return best, reduction.asked

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

        counterpart_request = counterpart_of(request, self.plan.stream_default) if with_counterpart else None
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


def counterpart_of(request: PreparedRequest, stream_default: bool = True) -> PreparedRequest | None:
    """The same request with the other ``stream`` value (absent counts as the document's default)."""
    if not isinstance(request.body, dict):
        return None
    body = dict(request.body)
    body["stream"] = not bool(request.body.get("stream", stream_default))
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return PreparedRequest(request.method, request.url, dict(request.headers), body, raw, kind=request.kind)


def _note_smallest(found: dict[str, _Found], seen: _Found) -> None:
    """Keep ``seen`` for each check it fails where it is smaller than the exchange kept so far."""
    size = len(seen.exchange.request.raw_body)
    for check in _reducible(seen.failures):
        kept = found.get(check)
        if kept is None or size < len(kept.exchange.request.raw_body):
            found[check] = seen


def _reducible(failures: Iterable[Failure]) -> set[str]:
    """The checks a request is to blame for: server-blamed, not a connection an earlier answer closed."""
    return {failure.check for failure in failures if failure.blame == "server" and failure.culprit is None}


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
