"""Check a live streaming chat-completion server against an OpenAPI contract.

``contract.run(url, ...)`` is the Python entry point; it is imported on first
use so that importing the package (the pytest plugin does, in every run) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import RunResult, run

__all__ = ["run", "RunResult"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'contract' has no attribute {name!r}")
