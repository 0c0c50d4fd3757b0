"""Blame: when a failure comes only from the document, say so, with the lint's witness.

An instance valid under two branches of a ``oneOf``, a stream the document never
describes, errors it never documents: the server did nothing wrong, so the
failure is reported with ``blame="document"`` and the fix belongs in the document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.exchange import Exchange, Failure
from ..core.spec import DOCUMENT_URI, SpecError, pointer_join
from ..core.validate import EVENT_STREAM, ValidationError, short_json
from .context import MAX_FAILURES_PER_CHECK, CheckContext, Finding
from .helpers import documented_media, one_line, value_at, wants_stream

# Lint rules whose findings make a response unjudgeable by the document; their witness explains the failure.
AMBIGUITY_RULES = frozenset({"oneof-overlap", "ambiguous-response"})
STREAM_GAP_RULES = frozenset({"stream-not-documented"})
ERROR_GAP_RULES = frozenset({"no-error-responses"})
# Rules that say no real reply can validate at a place, with the values they are about.
INVALIDATING_RULES: dict[str, Callable[[Any], bool]] = {
    "null-forbidden": lambda value: value is None,
    "single-tool-call": lambda value: isinstance(value, list),
    "unsatisfiable": lambda value: True,
}
# What the document should have allowed, by rule, for the failure's "expected" line.
DEFECT_EXPECTATIONS = {
    "null-forbidden": "null allowed at {where} (real servers send null there)",
    "single-tool-call": "an array of tool calls at {where}",
    "unsatisfiable": "a satisfiable schema at {where}",
}


@dataclass(frozen=True)
class DocumentDefect:
    rule: str
    detail: str
    witness: Any


def validation_failures(
    ctx: CheckContext, check: str, errors: list[ValidationError], instance: Any, prefix: str = ""
) -> list[Failure]:
    failures = []
    for error in errors[:MAX_FAILURES_PER_CHECK]:
        seen = short_json(value_at(instance, error.path), 40)
        ambiguity = _ambiguity(ctx, error, instance)
        defect = ambiguity or _known_defect(ctx, error, instance)
        if defect:
            expected = (
                f"one branch of the oneOf at {error.schema_location}"
                if ambiguity
                else DEFECT_EXPECTATIONS.get(defect.rule, "a document that admits this value").format(
                    where=error.path or "/"
                )
            )
            failures.append(document_failure(check, defect, expected, seen))
        else:
            failures.append(
                Failure(check, one_line(f"{prefix}{error}"), expected=f"valid at {error.schema_location}", seen=seen)
            )
    return failures


def _ambiguity(ctx: CheckContext, error: ValidationError, instance: Any) -> DocumentDefect | None:
    """The error is a ``oneOf`` that the instance matches more than once: the document cannot tell."""
    location = error.schema_location
    if not location.endswith("/oneOf"):
        return None
    try:
        branches = ctx.spec.resolve(location)
    except SpecError:  # a location the validator made up for a broken pointer
        return None
    value = value_at(instance, error.path)
    if not isinstance(branches, list):
        return None
    matching = [i for i in range(len(branches)) if ctx.validator.is_valid_at(pointer_join(location, i), value)]
    if len(matching) < 2:
        return None
    finding = _finding(ctx, AMBIGUITY_RULES, location)
    witness = finding.witness if finding is not None and finding.witness is not None else value
    rule = finding.rule if finding is not None else "oneof-overlap"
    return DocumentDefect(
        rule,
        f"{error.path or '/'} is valid under {len(matching)} branches of the oneOf at "
        f"{location}, which must match exactly one",
        witness,
    )


def _known_defect(ctx: CheckContext, error: ValidationError, instance: Any) -> DocumentDefect | None:
    """The error sits where lint found that no real reply can validate (a forbidden null, one tool call)."""
    value = value_at(instance, error.path)
    for finding in ctx.findings:
        applies = INVALIDATING_RULES.get(getattr(finding, "rule", ""))
        if applies is not None and applies(value) and _related(str(finding.location), error.schema_location):
            return DocumentDefect(finding.rule, f"{error.path or '/'}: {error.message}", finding.witness)
    return None


def stream_gap(ctx: CheckContext, exchange: Exchange) -> DocumentDefect | None:
    """A stream was asked for (explicitly or by default) but the document never describes one."""
    status = exchange.status
    if not exchange.is_stream or status is None or not 200 <= status < 300:
        return None
    if documented_media(ctx, status, EVENT_STREAM) is not None or wants_stream(ctx, exchange) is not True:
        return None
    response = ctx.operation.response_for(status)
    finding = _finding(ctx, STREAM_GAP_RULES, response.pointer if response else ctx.operation.pointer)
    witness = finding.witness if finding is not None and finding.witness is not None else exchange.request.body
    body = exchange.request.body
    asked = "stream is true" if isinstance(body, dict) and "stream" in body else "stream is absent (default true)"
    return DocumentDefect(
        finding.rule if finding else "stream-not-documented",
        f"{asked} but status {status} documents no text/event-stream to describe the reply",
        witness,
    )


def error_gap(ctx: CheckContext, status: int) -> DocumentDefect | None:
    """A 4xx the document cannot describe because it documents no client error at all."""
    if not 400 <= status < 500:
        return None
    if any(key == "default" or key[:1] == "4" for key in ctx.operation.responses):
        return None
    finding = _finding(ctx, ERROR_GAP_RULES, pointer_join(ctx.operation.pointer, "responses"))
    witness = finding.witness if finding is not None and finding.witness is not None else {"status": status}
    return DocumentDefect(
        finding.rule if finding else "no-error-responses",
        f"the operation documents no 4xx response, so a refusal ({status}) cannot conform",
        witness,
    )


def _finding(ctx: CheckContext, rules: frozenset[str], location: str) -> Finding | None:
    """The lint finding of one of ``rules`` nearest to ``location`` (the same place, above or below it)."""
    candidates = [f for f in ctx.findings if getattr(f, "rule", None) in rules]
    for finding in candidates:
        if _related(str(getattr(finding, "location", "")), location):
            return finding
    return candidates[0] if candidates and rules != AMBIGUITY_RULES else None


def _related(a: str, b: str) -> bool:
    a, b = _norm_pointer(a), _norm_pointer(b)
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _norm_pointer(pointer: str) -> str:
    pointer = pointer.removeprefix(DOCUMENT_URI).split(" ", 1)[0]
    return pointer.removeprefix("#").rstrip("/")


def document_failure(check: str, defect: DocumentDefect, expected: str, seen: str) -> Failure:
    message = (
        f"defect of the document, not the server ({defect.rule}): {defect.detail}; "
        f"witness {short_json(defect.witness, 80)}"
    )
    return Failure(
        check, one_line(message), expected=expected[:80], seen=seen, blame="document", witness=defect.witness
    )
