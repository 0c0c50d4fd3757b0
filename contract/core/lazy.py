"""A package's public names, each imported from its home module on first use.

The packages' ``__init__`` modules name their public surface without importing it, so that importing
``contract`` (the pytest plugins do, in every run) or ``mockserver`` (``mockserver --version``) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``homes`` maps each public name to its relative module."""

    def attribute(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(home, package), name)

    return attribute
