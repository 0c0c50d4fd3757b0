"""The errors a run reports as one line and exit code 2: a mistake in how it was asked for."""

from __future__ import annotations


class UsageError(Exception):
    """A mistake in how the run was asked for (bad URL, unknown check); one line."""


class Unreachable(UsageError):
    """Nothing listens at the URL."""
