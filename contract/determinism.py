"""The same seed sends the same requests, from the CLI, the pytest plugin or a user's script.

Hypothesis mixes into its draws "local constants": literals it collects from
every non-installed module loaded in the process (and caches under
``.hypothesis/constants`` in the working directory). A run under pytest has the
user's conftest and plugins loaded, a run from the CLI does not, so the same
seed drew different strings and numbers. A contract run is not a test of the
code around it: it draws without those constants, and so leaves no
``.hypothesis/`` folder behind. The switch is scoped to the run, so a user's
own Hypothesis tests in the same process keep the behaviour they expect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0
_saved: Any = None


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Draw from Hypothesis's built-in constants only, for as long as the block runs (re-entrant)."""
    global _depth, _saved
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis without the module has no local constants
        yield
        return
    if not hasattr(providers, "_get_local_constants") or not hasattr(providers, "Constants"):
        yield  # pragma: no cover - a Hypothesis that draws no local constants
        return
    with _lock:
        if _depth == 0:
            _saved = providers._get_local_constants
            empty = providers.Constants()
            providers._get_local_constants = lambda: empty
            providers.CONSTANTS_CACHE.cache.clear()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                providers._get_local_constants = _saved
                providers.CONSTANTS_CACHE.cache.clear()
