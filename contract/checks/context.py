"""What a check is given besides the exchange, and what it gives back.

A check is a function ``(CheckContext, Exchange) -> Verdict``. The context
holds the document, its validator and the operation under test; the verdict is
a list of failures (empty: judged and found right) or ``None`` (did not judge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.dialect import Dialect
from ..core.exchange import Exchange, Failure
from ..core.spec import Operation, Spec
from ..core.validate import ContractValidator

Verdict = list[Failure] | None  # None: the check did not judge this exchange
MAX_FAILURES_PER_CHECK = 5  # per exchange: a broken stream of 500 events is one story, not 500


class Finding(Protocol):
    """What the checks read of a lint finding (``contract.lint.Finding``)."""

    level: str
    rule: str
    location: str
    message: str
    witness: Any


@dataclass(frozen=True)
class CheckContext:
    """What every check may consult besides the exchange itself."""

    spec: Spec
    validator: ContractValidator
    operation: Operation
    dialect: Dialect  # what the document says of behaviour a schema does not carry, read once per run
    findings: Sequence[Finding] = ()
    max_ttft_ms: float | None = None
    accept_valid: bool = False  # the opt-in: schema-valid requests must be accepted
    counterpart: Exchange | None = None  # the same request sent with the other ``stream`` value

    @classmethod
    def for_spec(
        cls, spec: Spec, path: str = "/chat/completions", method: str = "post", **options: Any
    ) -> CheckContext:
        operation = spec.operation(path, method)
        return cls(spec, ContractValidator(spec), operation, Dialect.of(spec, path), **options)
