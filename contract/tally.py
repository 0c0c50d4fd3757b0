"""What a run has learnt so far, shared by the phases that run side by side.

The run's phases send from several threads; everything they record (counts per check, the minimal
failure of each check per phase, the document's defects, the timings, the timeouts that stop a run)
is kept here, under one lock, and turned into the :class:`RunResult` when the run ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from .client import is_costly
from .core.exchange import Exchange, Failure
from .diagnosis import DIALECT_CHECK, Answer, diagnose, dialect_hint, is_openai_default
from .results import FailureRecord, PhaseSummary, RunResult

TRANSPORT_CHECK = "transport_ok"  # where a reset, a timeout, a cap or garbage bytes are reported
ABORT_AFTER_TIMEOUTS = 2  # consecutive timeouts before the run stops sending
TIMINGS = ("ttfb_ms", "ttft_ms", "total_ms")
GAPS = "gap_ms"  # time between two consecutive events of one stream
SAMPLE_LIMIT = 5_000  # values kept per timing series: memory stays bounded however long the run
TIMELINES = 5  # streams whose event arrivals are kept whole, for the report's timeline


class RunTally:
    """The counts, failures and timings of one run, safe to record from several threads."""

    def __init__(self, result: RunResult, phases: Sequence[str], selected: Sequence[str]) -> None:
        self.result = result
        self.selected = list(selected)
        # Each phase keeps its own minimal failures, so a run with phases side by side finds the same
        # ones as a sequential run (see finish for which is reported).
        self.phase_records: dict[str, dict[str, FailureRecord]] = {name: {} for name in phases}
        # And, for every check that failed an exchange, the smallest such exchange as it was sent: the
        # example of last resort, so a check that failed is never reported as passing (a reduction's
        # budget may run out, or the run stop, before a check has its own example).
        self.phase_sightings: dict[str, dict[str, FailureRecord]] = {name: {} for name in phases}
        self._document_keys: set[tuple[str, str]] = set()
        self._samples: dict[str, Thinned] = {name: Thinned(SAMPLE_LIMIT) for name in (*TIMINGS, GAPS)}
        self._timelines: list[list[float]] = []
        self._timeout_recorded = False
        self._consecutive_timeouts = 0
        self._dialect_counts = [0, 0]  # content_type_matches failures: the OpenAI default, and any other
        self._lock = threading.Lock()

    @property
    def aborted(self) -> bool:
        return bool(self.result.aborted)

    def has_example(self, phase: str, check: str) -> bool:
        """Whether ``check`` already has its reported example in ``phase`` (reduced, or kept as sent)."""
        with self._lock:
            return check in self.phase_records[phase]

    def failed_in(self, phase: str) -> int:
        """Checks that failed an exchange of ``phase``: what its progress line and its summary both count."""
        with self._lock:
            return len(self.phase_records[phase].keys() | self.phase_sightings[phase].keys())

    def sent(self, exchange: Exchange) -> None:
        with self._lock:
            self.result.requests_sent += 1
            for name in TIMINGS:
                value = getattr(exchange.timings, name)
                if value is not None:
                    self._samples[name].add(value)
            arrivals = exchange.event_ms
            gaps = self._samples[GAPS]
            for before, after in zip(arrivals, arrivals[1:]):
                gaps.add(round(after - before, 3))
            if len(arrivals) > 1 and len(self._timelines) < TIMELINES:
                self._timelines.append(list(arrivals))

    def judged(
        self,
        phase: str,
        exchange: Exchange,
        failures: list[Failure],
        judged: frozenset[str],
        valid: bool,
        refused: bool,
    ) -> None:
        """One judged exchange: ``valid`` when the request met the contract, ``refused`` when it was refused."""
        timed_out = is_costly(exchange)
        with self._lock:
            failed = {f.check for f in failures if f.blame == "server"}
            self._sighted(phase, failures, exchange)
            for failure in failures:
                if failure.check == DIALECT_CHECK and failure.blame == "server":
                    seen_json = (exchange.content_type or "").split(";")[0].strip().lower() == "application/json"
                    default = is_openai_default(failure.check, failure.expected, exchange.request.body, seen_json)
                    self._dialect_counts[0 if default else 1] += 1
            for name in self.selected:
                stats = self.result.stats[name]
                if name in failed:
                    stats.failed += 1
                elif name in judged:
                    stats.passed += 1
            if valid:
                self.result.valid_answers[answer_of(exchange)] += 1
            if valid and refused:
                self.result.refused_valid += 1
                self.result.refusals[answer_of(exchange)] += 1
            for failure in failures:
                if failure.blame == "document" and (failure.check, failure.message) not in self._document_keys:
                    self._document_keys.add((failure.check, failure.message))
                    self.result.document_defects.append(FailureRecord.of(failure, phase, exchange))
            self._consecutive_timeouts = self._consecutive_timeouts + 1 if timed_out else 0
            transport = [f for f in failures if f.check == TRANSPORT_CHECK]
            if timed_out and transport and not self._timeout_recorded:
                # Timeouts are not shrunk: each step would cost a full timeout.
                self._timeout_recorded = True
                self.phase_records[phase][TRANSPORT_CHECK] = FailureRecord.of(transport[0], phase, exchange)
            if self._consecutive_timeouts >= ABORT_AFTER_TIMEOUTS and not self.result.aborted:
                self.result.aborted = (
                    f"{self._consecutive_timeouts} requests in a row timed out or hit a limit "
                    f"({exchange.transport_error}); stopped sending"
                )

    def _sighted(self, phase: str, failures: Iterable[Failure], exchange: Exchange) -> None:
        """Keep, per check, the smallest exchange that failed it (called under the lock)."""
        sightings = self.phase_sightings[phase]
        for failure in failures:
            if failure.blame != "server":
                continue
            record = FailureRecord.of(failure, phase, exchange, as_sent=True)
            kept = sightings.get(failure.check)
            if kept is None or len(record.request.raw_body) < len(kept.request.raw_body):
                sightings[failure.check] = record

    def keep_as_sent(self, phase: str, failures: Iterable[Failure], exchange: Exchange) -> None:
        """Each server-blamed failure of an exchange that is not reduced, as it was sent (so marked)."""
        with self._lock:
            for failure in failures:
                if failure.blame == "server" and failure.check not in self.phase_records[phase]:
                    self.phase_records[phase][failure.check] = FailureRecord.of(failure, phase, exchange, as_sent=True)

    def keep_minimal(self, phase: str, found: Iterable[tuple[Failure, Exchange]]) -> set[str]:
        """Reduced failures; the checks among them that had none in ``phase`` before.

        ``found`` holds every server-blamed failure of a reduced exchange, not only the one it was
        reduced for: the minimal 500 that shows not_a_server_error shows error_body_valid too. Where
        two exchanges show one check, the smaller request is kept.
        """
        new: dict[str, FailureRecord] = {}
        with self._lock:
            records = self.phase_records[phase]
            for failure, exchange in found:
                if failure.blame != "server" or failure.check in records:
                    continue
                kept = new.get(failure.check)
                if kept is None or len(exchange.request.raw_body) < len(kept.request.raw_body):
                    new[failure.check] = FailureRecord.of(failure, phase, exchange)
            records.update(new)
        return set(new)

    def finish(self, summaries: list[PhaseSummary], base: str, operation_path: str, seconds: float) -> RunResult:
        """The result: one failure per check, in the order the checks were selected, and the diagnosis."""
        result = self.result
        result.phases = summaries
        # A shrunk failure from a generated phase says more than the coverage request that found it too.
        for name in sorted(self.phase_records, key=lambda phase: phase == "coverage"):
            for check, record in self.phase_records[name].items():
                if not result.failures_for(check):
                    result.failures.append(record)
        for name in sorted(self.phase_sightings, key=lambda phase: phase == "coverage"):
            for check, record in self.phase_sightings[name].items():
                if not result.failures_for(check):
                    result.failures.append(record)  # failed, but no shrunk example: shown as it was sent
        if not result.aborted:
            judged = {name: stats.judged for name, stats in result.stats.items()}
            result.diagnosis = diagnose(base, operation_path, result.valid_answers, judged, self.selected)
        result.hint = dialect_hint(*self._dialect_counts)
        for summary in summaries:
            summary.failing_checks = self.failed_in(summary.name)
        order = {name: position for position, name in enumerate(self.selected)}
        result.failures.sort(key=lambda f: order.get(f.check, len(order)))
        result.timings = {name: percentiles(self._samples[name].values, self._samples[name].seen) for name in TIMINGS}
        result.samples = {name: list(series.values) for name, series in self._samples.items()}
        result.sample_counts = {name: series.seen for name, series in self._samples.items()}
        result.timelines = list(self._timelines)
        result.seconds = round(seconds, 3)
        return result


class Thinned:
    """At most ``limit`` values of a series, evenly spaced over all that were added.

    Every ``stride``-th value is kept; when the list fills up, every other one is dropped and the
    stride doubles, so the kept values stay spread over the whole run (and the same run keeps the same).
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(2, limit)
        self.values: list[float] = []
        self.stride = 1
        self.seen = 0

    def add(self, value: float) -> None:
        if self.seen % self.stride == 0:
            self.values.append(value)
            if len(self.values) > self.limit:
                del self.values[1::2]
                self.stride *= 2
        self.seen += 1


def answer_of(exchange: Exchange) -> Answer:
    """The status and the error's ``code`` (or, with no HTTP answer, what went wrong)."""
    if exchange.status is None:
        return Answer(None, (exchange.transport_error or "no response").split(":", 1)[0][:60])
    body = exchange.json
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return Answer(exchange.status, code if isinstance(code, str) else None)


def percentiles(values: list[float], count: int | None = None) -> dict[str, float | None]:
    """p50 and p95 of ``values``; ``count`` is how many were measured when ``values`` is a thinned sample."""
    if not values:
        return {"p50": None, "p95": None, "count": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))], 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "count": len(ordered) if count is None else count}
