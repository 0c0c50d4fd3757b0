"""Defects of the contract document itself, each shown with a witness instance (see :mod:`.rules`)."""

from __future__ import annotations

from .rules import Finding, lint_main, lint_spec

__all__ = ["Finding", "lint_main", "lint_spec"]
