"""Where the toolkit reaches beneath another library's public API: one module per library.

Each module names the versions it was checked against, ``pyproject.toml`` bounds each
library below its next release line, and ``tests/test_borrowed_internals.py`` fails with
the library's name and the internal when a release moves one. Nothing else in the toolkit
touches those internals; uvicorn's are in :mod:`mockserver.uvicorn_compat`, beside the only
code that uses them.
"""

from __future__ import annotations


class IncompatibleLibrary(RuntimeError):
    """An installed library no longer has an internal the toolkit relies on."""

    def __init__(self, library: str, version: str, internal: str, consequence: str, module: str) -> None:
        super().__init__(
            f"{library} {version} has no {internal}, which {module} relies on ({consequence}); "
            f"install a {library} within the bounds in pyproject.toml, or adapt {module} to this release"
        )
