"""The named checks: each a plain function over one exchange, registered by name.

A check returns the ways the exchange broke the contract, as :class:`Failure`
records with a one-line message, what was expected and what was seen; an empty
list means it judged the exchange and found it right. A check that does not
apply to an exchange (a stream check on a JSON body, a semantic check on a
refusal) returns ``None``: it did not judge, and a run counts that apart, so a
check that judged nothing is reported as not exercised, never as passing.
Checks never raise on hostile data.

The package is split by job: :mod:`.response`, :mod:`.stream` and
:mod:`.semantic` hold the built-in checks by scope, :mod:`.blame` tells a
document's defect from a server's, :mod:`.helpers` holds what several checks
read, :mod:`.registry` holds them all by name (and the public :func:`check`
decorator), and :mod:`.table` renders the documentation's table from it.
"""

from __future__ import annotations

from ..core.exchange import Exchange, Failure
from .context import MAX_FAILURES_PER_CHECK, CheckContext, Finding, Verdict
from .helpers import is_refusal, request_is_valid, stream_default, stream_terminator
from .registry import (
    BUILT_IN,
    CHECKS,
    Check,
    Outcome,
    Scope,
    check,
    default_checks,
    judge,
    register,
    run_checks,
    select_checks,
    unregister,
)
from .table import checks_table

__all__ = [
    "BUILT_IN",
    "CHECKS",
    "MAX_FAILURES_PER_CHECK",
    "Check",
    "CheckContext",
    "Exchange",
    "Failure",
    "Finding",
    "Outcome",
    "Scope",
    "Verdict",
    "check",
    "checks_table",
    "default_checks",
    "is_refusal",
    "judge",
    "register",
    "request_is_valid",
    "run_checks",
    "select_checks",
    "stream_default",
    "stream_terminator",
    "unregister",
]
