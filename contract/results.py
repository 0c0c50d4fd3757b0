"""What a run found: the records the runner fills in and every report reads.

They live apart from both so that the report never imports the runner, and a
tool that only reads results (the pytest plugin's workers, a JSON consumer)
never loads the machinery that produced them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .diagnosis import Answer
from .exchange import Exchange, Failure, PreparedRequest


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

    @classmethod
    def of(cls, failure: Failure, phase: str, exchange: Exchange) -> FailureRecord:
        return cls(
            failure.check,
            failure.message,
            failure.expected,
            failure.seen,
            failure.blame,
            failure.witness,
            phase,
            exchange.request,
            exchange,
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
    profile: str = "seed"  # the dialect the run judged by (contract.profiles): every report names it
    profile_options: tuple[str, ...] = ()  # --profile/--overlay as given, for the rerun line

    @property
    def ok(self) -> bool:
        return not self.failures and self.aborted is None and self.diagnosis is None

    def verdict(self, check: str) -> str:
        """``FAIL``, ``ok`` or ``not exercised`` (judged no exchange, so it proves nothing)."""
        if self.failures_for(check):
            return "FAIL"
        stats = self.stats.get(check)
        return "ok" if stats is not None and stats.judged else "not exercised"

    def failures_for(self, check: str) -> list[FailureRecord]:
        return [f for f in self.failures if f.check == check]
