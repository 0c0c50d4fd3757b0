"""The same seed sends the same requests, from the CLI, the pytest plugin or a user's script.

Hypothesis mixes into its draws "local constants": literals it collects from
every non-installed module loaded in the process (and caches under
``.hypothesis/constants`` in the working directory). A run under pytest has the
user's conftest and plugins loaded, a run from the CLI does not, so the same
seed drew different strings and numbers. A contract run is not a test of the
code around it: it draws without those constants, and so leaves no
``.hypothesis/`` folder behind. The switch is scoped to the run, so a user's
own Hypothesis tests in the same process keep the behaviour they expect. The switch
itself is Hypothesis's internal, kept in :mod:`contract.compat.hypothesis`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .compat import hypothesis as hypothesis_compat

_lock = threading.Lock()
_depth = 0
_saved: hypothesis_compat.LocalConstants | None = None


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Draw from Hypothesis's built-in constants only, for as long as the block runs (re-entrant)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = hypothesis_compat.local_constants()
            hypothesis_compat.set_local_constants(hypothesis_compat.no_constants())
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                hypothesis_compat.set_local_constants(_saved)
                _saved = None
