"""pytest plugin: a ``mockserver`` fixture that is a real server on a free loopback port.

The server lives for the whole session (starting one per test would cost more
than most tests), but each test that uses it sees a clean server: the plugin
resets it (journal, scenario positions, conversations added or removed at run
time) before the test, so tests pass in any order and under pytest-xdist,
where each worker has its own server. A test that needs other settings
(pacing, faults, another folder) starts its own with ``mockserver_factory``.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from contract.core.profiles import Profile, ProfileError
from contract.core.profiles import profile as named_profile

if TYPE_CHECKING:
    from .settings import Settings
    from .turns import Pacing

FIXTURES_OPTION = "--mockserver-fixtures"
FIXTURES_INI = "mockserver_fixtures"
PROFILE_OPTION = "--mockserver-profile"
PROFILE_INI = "mockserver_profile"
OVERLAY_OPTION = "--mockserver-overlay"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver", "chat-completion mock server")
    group.addoption(
        FIXTURES_OPTION,
        metavar="DIR",
        default=None,
        help="fixture conversations for the mockserver fixture (default: the bundled ones)",
    )
    parser.addini(FIXTURES_INI, "fixture conversations for the mockserver fixture, relative to the rootdir", default="")
    group.addoption(
        PROFILE_OPTION,
        metavar="NAME",
        default=None,
        help="the dialect the mockserver fixtures serve: seed (default) or openai (see docs/profiles.md)",
    )
    group.addoption(
        OVERLAY_OPTION,
        metavar="FILE",
        action="append",
        default=[],
        help="an OpenAPI Overlay applied on top of the profile (repeatable)",
    )
    parser.addini(PROFILE_INI, "the dialect the mockserver fixtures serve (seed or openai)", default="")


class MockServer:
    """Handle on a running mock server: its URLs, what it received, and its run-time conversations."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url  # http://127.0.0.1:PORT
        self.url = base_url + "/v1"  # what the openai SDK takes as base_url
        self._client = httpx.Client(base_url=base_url, timeout=10)

    # -- what the server received --------------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """The journal since the last reset, oldest first: body, headers (secrets redacted), status,
        ``fixture`` and ``turn`` matched, ``play`` (the how-manieth request that turn answered), fault."""
        response = self._client.get("/__mock/requests")
        response.raise_for_status()
        return list(response.json()["requests"])

    @property
    def last_request(self) -> dict[str, Any]:
        """The latest journal entry; AssertionError when the server received nothing since the reset."""
        requests = self.requests
        if not requests:
            raise AssertionError("the mock server received no request in this test")
        return requests[-1]

    @property
    def matches(self) -> list[tuple[str | None, int | None]]:
        """``(fixture, turn)`` of each request, oldest first; ``("fallback", None)`` or ``(None, None)`` unmatched."""
        return [(entry["fixture"], entry["turn"]) for entry in self.requests]

    @property
    def fixtures(self) -> list[dict[str, Any]]:
        """The conversations served now: ``name``, ``file``, ``turns``, ``hits`` (since the reset), ``added``."""
        response = self._client.get("/__mock/fixtures")
        response.raise_for_status()
        return list(response.json()["fixtures"])

    # -- changing it -----------------------------------------------------------------------------------
    def add_conversation(self, conversation: Mapping[str, Any] | str) -> str:
        """Add a fixture (a mapping, or YAML/JSON text in the fixture-file format) until the next reset.

        One with the same name is replaced. Returns the name; ValueError with the server's one-line
        reason when the conversation is not valid.
        """
        data = yaml.safe_load(conversation) if isinstance(conversation, str) else dict(conversation)
        response = self._client.post("/__mock/fixtures", json=data)
        if response.status_code != 200:
            raise ValueError(response.json()["error"]["message"])
        return str(response.json()["name"])

    def remove_conversation(self, name: str) -> None:
        """Stop serving a conversation (from the folder or added) until the next reset; KeyError if unknown."""
        response = self._client.delete(f"/__mock/fixtures/{urllib.parse.quote(name, safe='')}")
        if response.status_code == 404:
            raise KeyError(name)
        response.raise_for_status()

    def clear(self) -> None:
        """Empty the journal only."""
        self._client.delete("/__mock/requests").raise_for_status()

    def reset(self) -> None:
        """Back to how the server started: empty journal, scenarios from the top, no run-time conversations."""
        self._client.post("/__mock/reset").raise_for_status()

    def describe_requests(self) -> str:
        """One line per journal entry, for a failing test's report."""
        lines = []
        for number, entry in enumerate(self.requests, 1):
            body = entry.get("body")
            messages = body.get("messages") if isinstance(body, dict) else None
            last = messages[-1] if isinstance(messages, list) and messages else None
            said = json.dumps(last.get("content"), ensure_ascii=False)[:80] if isinstance(last, dict) else "-"
            matched = entry["fixture"]
            if entry["turn"] is not None:
                matched += f" turn {entry['turn']} play {entry.get('play')}"
            extra = f"  fault {entry['fault']}" if entry.get("fault") else ""
            if entry.get("error"):
                extra += f"  {entry['error']['code']}"
            lines.append(
                f"{number}. {entry['method']} {entry['path']} -> {entry['status']}  "
                f"{matched or 'no match'}  last message {said}{extra}"
            )
            if matched == "fallback" and entry.get("near_misses"):  # a made-up reply where a fixture was meant?
                lines.append(f"   nearest fixture: {entry['near_misses'][0]}")
        return "\n".join(lines) or "(no requests)"

    def close(self) -> None:
        self._client.close()


class _RunningServer:
    """A mock server in this process: the app, its thread, and the handle tests use."""

    def __init__(self, folder: Path | None, settings: Settings, profile: Profile | None = None) -> None:
        from .app import create_app
        from .serve import ServerThread

        app = create_app(folder, settings, profile=profile)
        self.thread = ServerThread(app).start()
        self.handle = MockServer(self.thread.url)

    def stop(self) -> None:
        self.handle.close()
        self.thread.stop()


def _fixtures_folder(config: pytest.Config) -> Path | None:
    option = config.getoption(FIXTURES_OPTION)
    if option:
        return Path(option).resolve()
    ini = str(config.getini(FIXTURES_INI) or "").strip()
    return (config.rootpath / ini).resolve() if ini else None


def _profile(config: pytest.Config, name: str | None = None, overlays: Sequence[str | Path] = ()) -> Profile:
    """The profile a test asked for, else the command line's, else the ini file's, else ``seed``."""
    chosen = name or config.getoption(PROFILE_OPTION) or str(config.getini(PROFILE_INI) or "").strip() or None
    given = list(overlays) or list(config.getoption(OVERLAY_OPTION) or [])
    try:
        return named_profile(chosen, given)
    except ProfileError as exc:
        pytest.fail(f"mockserver: {exc}", pytrace=False)


def _start(folder: Path | None, profile: Profile, **settings: Any) -> _RunningServer:
    """A started server; a bad setting, fixture or document fails the test in one line."""
    from contract.core.spec import SpecError

    from .fixtures import FixtureError
    from .settings import Settings  # here, not at the top: the plugin loads in every pytest run

    names = {field.name for field in dataclasses.fields(Settings)}
    unknown = sorted(set(settings) - names)
    if unknown:
        pytest.fail(f"mockserver: no setting {unknown[0]!r} (the settings: {', '.join(sorted(names))})", pytrace=False)
    try:
        return _RunningServer(folder, Settings(**settings), profile)
    except (FixtureError, SpecError, ValueError) as exc:
        problem = str(exc)
    pytest.fail(f"mockserver: {problem}", pytrace=False)  # outside the except: one line, no chained traceback


@pytest.fixture(scope="session")
def mockserver_session(pytestconfig: pytest.Config) -> Iterator[MockServer]:
    """The session's server, with no delays, as it is: nothing is reset. Tests use ``mockserver``."""
    server = _start(_fixtures_folder(pytestconfig), _profile(pytestconfig), no_delay=True)
    try:
        yield server.handle
    finally:
        server.stop()


@pytest.fixture()
def mockserver(mockserver_session: MockServer) -> MockServer:
    """The session's server, reset before this test: see ``MockServer``."""
    mockserver_session.reset()
    return mockserver_session


ServerFactory = Callable[..., MockServer]


@pytest.fixture()
def mockserver_factory(pytestconfig: pytest.Config) -> Iterator[ServerFactory]:
    """Start servers of this test's own; each stops when the test ends.

    ``mockserver_factory(fixtures=DIR, conversations=[...], pacing={...}, profile=None, overlays=[],
    **settings)``, where ``settings`` are the fields of ``mockserver.Settings`` (``seed=0``,
    ``fault_rate=0.0``, ``fault_types=[...]``, ``fallback=None``, ``journal_size=100``,
    ``max_body=1_000_000``, ``watch=False``, ``watch_interval=0.5``, ``allowed_hosts=[...]``), checked
    as ``Settings`` checks them. With no ``fixtures``, the folder the session's server uses; with no
    ``profile``, the session's profile (``--mockserver-profile``, the ``mockserver_profile`` ini option,
    or ``seed``). Without ``pacing`` every chunk goes at once; with it
    (``{"ttft_ms": 100, "tokens_per_second": 50, "jitter": 0}`` or a ``Pacing``) the stream is paced.
    """
    servers: list[_RunningServer] = []

    def start(
        fixtures: str | Path | None = None,
        *,
        conversations: Iterable[Mapping[str, Any] | str] = (),
        pacing: Pacing | Mapping[str, float] | None = None,
        profile: str | None = None,
        overlays: Sequence[str | Path] = (),
        **settings: Any,
    ) -> MockServer:
        if pacing is None:
            settings.setdefault("no_delay", True)
        else:
            settings["pacing"] = pacing
        folder = Path(fixtures).resolve() if fixtures is not None else _fixtures_folder(pytestconfig)
        server = _start(folder, _profile(pytestconfig, profile, overlays), **settings)
        servers.append(server)
        start.started.append(server.handle)  # type: ignore[attr-defined]
        for conversation in conversations:
            server.handle.add_conversation(conversation)
        return server.handle

    start.started = [server.handle for server in servers]  # type: ignore[attr-defined]  # the failure report
    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test that used ``mockserver`` (or servers of ``mockserver_factory``) shows what each server
    received, in a report section."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    handles = [funcargs.get("mockserver"), *getattr(funcargs.get("mockserver_factory"), "started", [])]
    for number, handle in enumerate(h for h in handles if isinstance(h, MockServer)):
        try:
            title = "mockserver requests" if number == 0 else f"mockserver requests ({number + 1})"
            report.sections.append((title, handle.describe_requests()))
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
