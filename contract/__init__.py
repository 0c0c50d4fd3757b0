"""Check a live streaming chat-completion server against an OpenAPI contract.

``contract.run(url, ...)`` is the Python entry point and ``@contract.check`` adds
a check of your own. Each name is imported on first use, so that importing the
package (the pytest plugin does, in every run) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .checks import CheckContext, check, unregister
    from .core.exchange import Exchange, Failure
    from .results import RunResult
    from .runner import run

_HOMES = {
    "run": ".runner",
    "RunResult": ".results",
    "check": ".checks",
    "unregister": ".checks",
    "CheckContext": ".checks",
    "Exchange": ".core.exchange",
    "Failure": ".core.exchange",
}
__all__ = ["CheckContext", "Exchange", "Failure", "RunResult", "check", "run", "unregister"]

__getattr__ = lazy_attributes(__name__, _HOMES)
