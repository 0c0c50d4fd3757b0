"""``contract-check --lint``: the findings, one line each, a summary line, and the exit code."""

from __future__ import annotations

import sys
from typing import TextIO

from ..core.profiles import Profile
from ..core.spec import SpecError, load_spec
from .rules import lint_spec


def lint_main(spec_path: str | None, out: TextIO, profile: Profile | None = None) -> int:
    """``contract-check --lint``: 0 no error-level finding, 1 some, 2 the document cannot be read.

    Under a profile other than the default, the summary line names it: the findings are the dialect's.
    """
    try:
        spec = load_spec(spec_path, profile)
        findings = lint_spec(spec)
    except SpecError as exc:
        sys.stderr.write(f"contract-check: error: {exc}\n")
        return 2
    for finding in findings:
        out.write(f"{finding}\n")
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    dialect = f" (profile {spec.profile.label})" if spec.profile.options() else ""
    out.write(
        f"{spec.source}{dialect}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}\n"
    )
    return 1 if errors else 0
