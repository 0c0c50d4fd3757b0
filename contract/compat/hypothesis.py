"""Hypothesis's "local constants": the literals it collects from the code loaded in the process.

Checked against Hypothesis 6.170.9 (the installed release) and, by reading their source, 6.132.0,
6.135.0 and 6.150.0: ``hypothesis.internal.conjecture.providers`` has ``_get_local_constants()``
returning a ``Constants``, a ``Constants()`` that is empty, and ``CONSTANTS_CACHE``, an ``LRUCache``
whose ``cache`` (one per thread) holds the constants drawn from. Releases before 6.131 collect no
local constants; 6.131.x collected them in another shape, so the lower bound in pyproject.toml is
6.132.

A release without these names would make the same seed draw different requests under pytest than
from the command line, without a word, so a missing name raises :class:`IncompatibleLibrary`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import hypothesis

from . import IncompatibleLibrary

PROVIDERS = "hypothesis.internal.conjecture.providers"
LOCAL_CONSTANTS = "_get_local_constants"  # () -> Constants: every literal of the non-installed modules loaded
EMPTY_CONSTANTS = "Constants"  # Constants() holds nothing
CONSTANTS_CACHE = "CONSTANTS_CACHE"  # .cache: what was drawn from, per choice type, for the current thread

LocalConstants = Callable[[], Any]


def providers() -> ModuleType:
    """Hypothesis's providers module, once it is known to have every name used here."""
    from hypothesis.internal.conjecture import providers as module

    for name in (LOCAL_CONSTANTS, EMPTY_CONSTANTS, CONSTANTS_CACHE):
        if not hasattr(module, name):
            raise IncompatibleLibrary(
                "hypothesis",
                hypothesis.__version__,
                f"{PROVIDERS}.{name}",
                "without it the same --seed would send different requests under pytest and from the command line",
                __name__,
            )
    return module


def local_constants() -> LocalConstants:
    """The function Hypothesis calls for the local constants it mixes into its draws."""
    found: LocalConstants = getattr(providers(), LOCAL_CONSTANTS)
    return found


def set_local_constants(source: LocalConstants) -> None:
    """Make Hypothesis call ``source`` for its local constants (and forget what it drew from before)."""
    module = providers()
    setattr(module, LOCAL_CONSTANTS, source)
    getattr(module, CONSTANTS_CACHE).cache.clear()


def no_constants() -> LocalConstants:
    """A source of local constants that has none."""
    empty = getattr(providers(), EMPTY_CONSTANTS)()
    return lambda: empty
