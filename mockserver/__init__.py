"""A mock streaming chat-completion server that replays fixture conversations.

``create_app(folder)`` builds the ASGI app the command line serves, and
``ServerThread(app)`` serves one on a loopback port inside a process (tests,
notebooks). Each name is imported on first use, so that ``mockserver --version``,
a mistyped flag and the pytest plugin's start-up stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .app import create_app
    from .fixtures import Fixture, FixtureError, fixture_from_dict, load_fixtures
    from .pytest_plugin import MockServer
    from .serve import ServerThread, free_port
    from .settings import Settings
    from .turns import AssistantTurn, Pacing, PacingError

_HOMES = {
    "create_app": ".app",
    "Settings": ".settings",
    "Fixture": ".fixtures",
    "FixtureError": ".fixtures",
    "fixture_from_dict": ".fixtures",
    "load_fixtures": ".fixtures",
    "MockServer": ".pytest_plugin",
    "ServerThread": ".serve",
    "free_port": ".serve",
    "AssistantTurn": ".turns",
    "Pacing": ".turns",
    "PacingError": ".turns",
}
__all__ = [
    "AssistantTurn",
    "Fixture",
    "FixtureError",
    "MockServer",
    "Pacing",
    "PacingError",
    "ServerThread",
    "Settings",
    "create_app",
    "fixture_from_dict",
    "free_port",
    "load_fixtures",
]

__getattr__ = lazy_attributes(__name__, _HOMES)
