"""pytest plugin: a ``mockserver`` fixture that is a real server on a free loopback port.

The server lives for the whole session (starting it per test would cost more
than most tests); a test reads what its client sent from ``mockserver.requests``
and adds the conversations it needs with ``mockserver.add_conversation``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

FIXTURES_OPTION = "--mockserver-fixtures"
FIXTURES_INI = "mockserver_fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver", "chat-completion mock server")
    group.addoption(FIXTURES_OPTION, metavar="DIR", default=None,
                    help="fixture conversations for the mockserver fixture (default: the bundled ones)")
    parser.addini(FIXTURES_INI, "fixture conversations for the mockserver fixture, relative to the rootdir",
                  default="")


class MockServer:
    """Handle on a running mock server: its URLs, its journal, and conversations added at run time."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url  # http://127.0.0.1:PORT
        self.url = base_url + "/v1"  # what the openai SDK takes as base_url
        self._client = httpx.Client(base_url=base_url, timeout=10)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The server's journal, oldest first: body, headers (secrets redacted), matched fixture, status."""
        response = self._client.get("/__mock/requests")
        response.raise_for_status()
        return list(response.json()["requests"])

    def clear(self) -> None:
        self._client.delete("/__mock/requests").raise_for_status()

    def add_conversation(self, conversation: dict[str, Any] | str) -> str:
        """Add a fixture (a mapping, or YAML/JSON text in the fixture-file format); returns its name."""
        data = yaml.safe_load(conversation) if isinstance(conversation, str) else conversation
        response = self._client.post("/__mock/fixtures", json=data)
        if response.status_code != 200:
            raise ValueError(response.json()["error"]["message"])
        return str(response.json()["name"])

    def close(self) -> None:
        self._client.close()


def _fixtures_folder(config: pytest.Config) -> Path | None:
    option = config.getoption(FIXTURES_OPTION)
    if option:
        return Path(option).resolve()
    ini = str(config.getini(FIXTURES_INI) or "").strip()
    return (config.rootpath / ini).resolve() if ini else None


@pytest.fixture(scope="session")
def mockserver(pytestconfig: pytest.Config) -> Iterator[MockServer]:
    """A mock server for the session, with no delays; see ``MockServer``."""
    from .app import create_app
    from .fixtures import FixtureError
    from .serve import ServerThread

    try:
        app = create_app(_fixtures_folder(pytestconfig), no_delay=True)
    except FixtureError as exc:
        pytest.fail(f"mockserver: {exc}", pytrace=False)
    with ServerThread(app) as server:
        handle = MockServer(server.url)
        try:
            yield handle
        finally:
            handle.close()
