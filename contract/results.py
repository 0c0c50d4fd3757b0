"""What a run found: the records the runner fills in and every report reads.

They live apart from both so that the report never imports the runner, and a
tool that only reads results (the pytest plugin's workers, a JSON consumer)
never loads the machinery that produced them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .core.exchange import Exchange, Failure, PreparedRequest
from .diagnosis import Answer
from .rerun import RerunOptions


@dataclass
class FailureRecord:
    """One distinct failure with the minimal request that shows it."""

    check: str
    message: str
    expected: str
    seen: str
    blame: str
    witness: Any
    phase: str
    request: PreparedRequest
    exchange: Exchange
    as_sent: bool = False  # True: the request is shown as it was sent, not shrunk (see RunTally)
    # For a failure of the connection (Failure.culprit): the request sent next on it, which met it closed.
    then: PreparedRequest | None = None

    @classmethod
    def of(cls, failure: Failure, phase: str, exchange: Exchange, *, as_sent: bool = False) -> FailureRecord:
        """The record of ``failure`` seen on ``exchange``; one with a culprit is recorded against the culprit."""
        shown = failure.culprit if failure.culprit is not None else exchange
        return cls(
            failure.check,
            failure.message,
            failure.expected,
            failure.seen,
            failure.blame,
            failure.witness,
            phase,
            shown.request,
            shown,
            as_sent or failure.culprit is not None,
            exchange.request if failure.culprit is not None else None,
        )


@dataclass
class CheckStats:
    """Exchanges a check judged and found right (passed) or wrong (failed); the rest it did not judge."""

    passed: int = 0
    failed: int = 0

    @property
    def judged(self) -> int:
        return self.passed + self.failed


@dataclass
class PhaseSummary:
    name: str
    requests: int = 0
    failing_checks: int = 0
    seconds: float = 0.0


@dataclass
class RunResult:
    url: str
    spec_source: str
    seed: int
    checks: list[str]
    failures: list[FailureRecord] = field(default_factory=list)
    document_defects: list[FailureRecord] = field(default_factory=list)
    stats: dict[str, CheckStats] = field(default_factory=dict)
    requests_sent: int = 0
    refused_valid: int = 0
    timings: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # The timings themselves, for pictures: per series (TIMINGS and gap_ms, the time between two events
    # of a stream) at most SAMPLE_LIMIT values, evenly thinned; sample_counts holds how many were measured.
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)
    sample_counts: dict[str, int] = field(default_factory=dict)
    timelines: list[list[float]] = field(default_factory=list, repr=False)  # event arrivals (ms) of a few streams
    phases: list[PhaseSummary] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early, if it did
    diagnosis: str | None = None  # why the run proved nothing, if it did not (see contract.diagnosis)
    hint: str | None = None  # what the failures mean together, when one cause explains them all
    valid_answers: Counter[Answer] = field(default_factory=Counter)  # how schema-valid requests were answered
    refusals: Counter[Answer] = field(default_factory=Counter)  # the documented 4xx among them
    seconds: float = 0.0
    workers: int = 1
    secrets: tuple[str, ...] = field(default=(), repr=False)  # header values to redact in reports
    profile: str = "seed"  # the dialect the run judged by (contract.core.profiles): every report names it
    rerun: RerunOptions = field(default_factory=RerunOptions)  # what the rerun line must repeat

    @property
    def failed_checks(self) -> list[str]:
        """The checks that failed, in the order the run selected them."""
        return list(dict.fromkeys(record.check for record in self.failures))

    @property
    def ok(self) -> bool:
        return not self.failures and self.aborted is None and self.diagnosis is None

    def verdict(self, check: str) -> str:
        """``FAIL`` (a failure, or any failed exchange), ``ok``, or ``not exercised`` (judged no exchange)."""
        stats = self.stats.get(check)
        if self.failures_for(check) or (stats is not None and stats.failed):
            return "FAIL"
        return "ok" if stats is not None and stats.judged else "not exercised"

    def failures_for(self, check: str) -> list[FailureRecord]:
        return [f for f in self.failures if f.check == check]
