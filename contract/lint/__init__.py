"""Defects of the contract document itself, each shown with a witness instance.

Before the document is used to judge anyone, the lint looks for places where it
contradicts itself or where no real reply can validate. Where a defect is about
instances, the finding carries one concrete instance that shows it, so a reader
can check the claim by hand. The same document always gives the same findings
and witnesses. ``lint_spec(spec)`` returns them; ``contract-check --lint`` prints them.

The package is split by job: :mod:`.structure` checks first that the document is
OpenAPI at all (with openapi-spec-validator), :mod:`.rules` holds the rules and
:func:`lint_spec`, which runs them, over the walks of :mod:`.document`;
:mod:`.witnesses` builds and searches for the instances that show a defect;
:mod:`.refusals` asks servers' request refusers and reads the document's
``x-refusals``, and :mod:`.refusal_search` is the rule that puts the two together;
:mod:`.findings` holds :class:`Finding` and its one-line form, and :mod:`.cli` the
command line. Each name below is imported on first use, so that importing one
module (``refusals``, for a server's own tests) does not load the OpenAPI checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .cli import lint_main
    from .findings import Finding, Level
    from .refusals import ENTRY_POINT_GROUP, Refuser
    from .rules import RULES, lint_spec

_HOMES = {
    "Finding": ".findings",
    "Level": ".findings",
    "RULES": ".rules",
    "lint_spec": ".rules",
    "lint_main": ".cli",
    "ENTRY_POINT_GROUP": ".refusals",
    "Refuser": ".refusals",
}
__all__ = ["ENTRY_POINT_GROUP", "RULES", "Finding", "Level", "Refuser", "lint_main", "lint_spec"]

__getattr__ = lazy_attributes(__name__, _HOMES)
