"""What the mock server borrows from uvicorn beneath its documented surface, in one place.

Checked against uvicorn 0.55.0, with httptools 0.9.0 and h11 0.16.0 under it.

- Its HTTP/1.1 protocols, ``H11Protocol`` and ``HttpToolsProtocol`` (the latter only with httptools
  installed), which :mod:`mockserver.protocol` extends with a deadline and a size bound for each
  request head. The extension overrides the :data:`PROTOCOL_HOOKS` and reads the
  :data:`PROTOCOL_ATTRIBUTES` (``cycle`` is the current request's, ``None`` before the first);
  of a cycle it reads the :data:`CYCLE_ATTRIBUTES`. Each cycle logs through the ``logger`` of its
  protocol, with :data:`INCOMPLETE_RESPONSE` for a response that ended without its last body message.
- ``Multiprocess``, the supervisor of ``--workers``: built as ``Multiprocess(config, sockets=[sock])``
  and run; then each of its ``processes`` has the ``exitcode`` a worker left, and a worker that
  cannot start exits with ``STARTUP_FAILURE``.

``tests/test_borrowed_internals.py`` checks each of these names on the installed uvicorn.
"""

from __future__ import annotations

from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: uvicorn's pure-Python parser serves
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = [
    "CYCLE_ATTRIBUTES",
    "INCOMPLETE_RESPONSE",
    "PROTOCOL_ATTRIBUTES",
    "PROTOCOL_HOOKS",
    "STARTUP_FAILURE",
    "H11Protocol",
    "HttpToolsProtocol",
    "Multiprocess",
]

PROTOCOL_HOOKS = ("connection_made", "data_received", "on_response_complete", "connection_lost")
PROTOCOL_ATTRIBUTES = ("loop", "transport", "cycle", "logger")
CYCLE_ATTRIBUTES = ("response_complete", "scope")
INCOMPLETE_RESPONSE = "ASGI callable returned without completing response."  # logged at ERROR by the cycle
