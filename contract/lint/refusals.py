"""Refusals of schema-valid requests, and whether the document lists them.

A server may refuse a request its schema accepts, for a rule a schema cannot
state (``tool_choice`` names a tool the request does not offer). Whoever trusts
the document, a client or a tool such as Schemathesis, then sees "valid request
refused" and blames the server. So the document lists such refusals on its 400
response, as ``x-refusals`` entries of ``code`` and ``param``, and the lint asks
request refusers (a server's own request checks, published under the entry-point
group ``chatstream_testkit.request_refusers``) which refusals the list lacks.

A refuser is a callable ``(body) -> refusal | None``; a refusal has ``code``,
``param`` and ``message`` attributes. This module finds refusers, asks them, and
reads the document's list; the lint decides which bodies to ask about.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .findings import one_line

ENTRY_POINT_GROUP = "chatstream_testkit.request_refusers"
EXTENSION = "x-refusals"
_MAX_MESSAGE = 160  # characters of a refuser's message or failure kept on a finding's line

Refuser = Callable[[dict[str, Any]], object]
RefusalKey = tuple[str | None, str | None]  # (code, param with list indexes dropped)


@dataclass(frozen=True)
class Refused:
    """One refusal a refuser gave."""

    refuser: str
    code: str | None
    param: str | None
    message: str

    @property
    def key(self) -> RefusalKey:
        return self.code, normalise_param(self.param)


@dataclass(frozen=True)
class RefuserFailure:
    """A refuser that raised (or answered with something that is not a refusal) on ``body``."""

    refuser: str
    reason: str
    body: Any


def normalise_param(param: object) -> str | None:
    """``tools[2].function.parameters`` -> ``tools[].function.parameters``: the list names a field, not an index."""
    if param is None:
        return None
    return re.sub(r"\[\d+\]", "[]", str(param))


def documented_refusals(response: Any) -> set[RefusalKey]:
    """The (code, param) pairs a response object lists under ``x-refusals``; entries that are not
    mappings are skipped (the document's structure is not this module's business)."""
    entries = response.get(EXTENSION) if isinstance(response, dict) else None
    if not isinstance(entries, list):
        return set()
    return {
        (_text(entry.get("code")), normalise_param(entry.get("param"))) for entry in entries if isinstance(entry, dict)
    }


def named_refusers(refusers: Mapping[str, Refuser] | Iterable[Refuser] | None) -> dict[str, Refuser]:
    """Refusers by name: as given, named after their functions, or (``None``) the installed entry points."""
    if refusers is None:
        return entry_point_refusers()
    if isinstance(refusers, Mapping):
        return dict(refusers)
    named: dict[str, Refuser] = {}
    for refuser in refusers:
        name = _callable_name(refuser)
        named[name if name not in named else f"{name}#{len(named) + 1}"] = refuser
    return named


def entry_point_refusers() -> dict[str, Refuser]:
    """Every refuser installed under :data:`ENTRY_POINT_GROUP`, by entry-point name, in name order.
    One that cannot be loaded stays in, as a refuser that fails with the reason."""
    found: dict[str, Refuser] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        try:
            found[point.name] = point.load()
        except Exception as exc:  # a broken plugin is reported as a finding, never a traceback
            found[point.name] = _Unloadable(point, f"{type(exc).__name__}: {exc}")
    return found


@dataclass
class RefusalProbe:
    """Asks every refuser about request bodies; one that fails is set aside from then on, its failure kept."""

    refusers: Mapping[str, Refuser]
    documented: set[RefusalKey]
    failures: list[RefuserFailure] = field(default_factory=list)

    def undocumented(self, body: dict[str, Any], skip: Container[RefusalKey] = ()) -> Refused | None:
        """The first refusal of ``body`` whose (code, param) the document does not list (nor ``skip``)."""
        failed = {failure.refuser for failure in self.failures}
        for name, refuser in self.refusers.items():
            if name in failed:
                continue
            refused = self._ask(name, refuser, body)
            if refused is not None and refused.key not in self.documented and refused.key not in skip:
                return refused
        return None

    def _ask(self, name: str, refuser: Refuser, body: dict[str, Any]) -> Refused | None:
        try:
            answer = refuser(copy.deepcopy(body))
        except Exception as exc:
            self.failures.append(RefuserFailure(name, one_line(f"{type(exc).__name__}: {exc}", _MAX_MESSAGE), body))
            return None
        if answer is None:
            return None
        code, param = getattr(answer, "code", _MISSING), getattr(answer, "param", None)
        if code is _MISSING or not isinstance(code, (str, type(None))):
            self.failures.append(
                RefuserFailure(
                    name, f"it answered {one_line(repr(answer), _MAX_MESSAGE)[:80]}, which has no string .code", body
                )
            )
            return None
        return Refused(
            name,
            code,
            None if param is None else str(param),
            one_line(str(getattr(answer, "message", "")), _MAX_MESSAGE),
        )


class _Unloadable:
    """Stands in for an entry point that cannot be loaded: asking it fails with why."""

    def __init__(self, point: EntryPoint, reason: str) -> None:
        self.reason = f"cannot load {point.value}: {reason}"

    def __call__(self, body: dict[str, Any]) -> object:
        raise ImportError(self.reason)


_MISSING = object()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _callable_name(refuser: Refuser) -> str:
    return str(getattr(refuser, "__name__", None) or type(refuser).__name__)
