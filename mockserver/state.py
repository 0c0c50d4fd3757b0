"""The mock's mutable state, in one store with one reset.

A running mock changes in only these ways: requests are journaled and counted
(which seeds each reply and moves scenarios on), header faults with ``times``
are used up, and conversations are added or removed at run time. Keeping all
of it here means ``reset()`` returns the mock to how it started, which is what
the admin API's ``POST /__mock/reset`` and the pytest plugin (before each test)
call, so no test depends on the ones that ran before it. The conversations
loaded from files are not state: they change only when ``--watch`` swaps the
whole set.

Every method takes the store's lock: the event loop serves requests while the
watcher thread swaps fixture sets.

``Store`` is the interface the app uses. ``MockStore`` keeps everything in this
process's memory: the fast path, and the default. With ``--workers`` the state
must read the same whichever process answers, so ``shared_store.SharedStore``
implements the same interface over one SQLite file.

``MockState`` is what every route is given: the fixed validator and settings,
the store, and whoever answers what no fixture matches. A request's journal
record is a ``JournalEntry`` while it is answered, and its JSON once stored.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from contract.core.dialect import Dialect
from contract.core.validate import ContractValidator

from .admission import Admission
from .fixtures import PYTHON_SOURCE, Fixture
from .matching import FixtureIndex
from .randomness import RequestDraws
from .settings import Settings
from .startup_checks import check_fixture
from .watch import FixtureWatcher

Entry = dict[str, Any]  # one journal record, in the JSON shape GET /__mock/requests returns
API_SOURCE = "<api>"  # the source of conversations added with POST /__mock/fixtures
MAX_JOURNAL_HEADER_CHARS = 4096  # of each header value the journal keeps; a cookie or a token fits


@dataclass(slots=True)
class JournalEntry:
    """One request as the journal keeps it, filled in step by step while it is answered, then recorded whole.

    ``GET /__mock/requests``, the dashboard, the pytest plugin and the ``--workers`` store read its JSON
    (:meth:`as_json`): these keys, in this order.
    """

    time: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None  # the parsed body (``journal_body``), or the start of one that does not parse
    status: int | None = None
    fixture: str | None = None  # the fixture's name, "fallback" or "upstream"
    turn: int | None = None
    play: int | None = None  # which play of the turn answered, from 1
    near_misses: list[str] = field(default_factory=list)
    fault: str | None = None  # the fault plan, described
    error: dict[str, str] | None = None  # {"code", "message"} of a refusal
    timings: dict[str, float] | None = None  # when a stream's first token and end were due, in ms

    def as_json(self) -> Entry:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "fixture": self.fixture,
            "turn": self.turn,
            "play": self.play,
            "near_misses": self.near_misses,
            "fault": self.fault,
            "error": self.error,
            "timings": self.timings,
        }


def bounded_entry(entry: Entry) -> Entry:
    """``entry`` with each long header value cut, with a marker: the journal is read whole by every
    ``GET /__mock/requests``, and it keeps the last hundred entries."""
    headers = entry.get("headers")
    if not isinstance(headers, dict) or all(len(str(value)) <= MAX_JOURNAL_HEADER_CHARS for value in headers.values()):
        return entry
    return {**entry, "headers": {name: _cut(str(value)) for name, value in headers.items()}}


def _cut(value: str) -> str:
    if len(value) <= MAX_JOURNAL_HEADER_CHARS:
        return value
    return f"{value[:MAX_JOURNAL_HEADER_CHARS]}...[{len(value) - MAX_JOURNAL_HEADER_CHARS:,} more characters cut]"


class Store(Protocol):
    """Everything a running mock changes; the app reads and changes its state only through this."""

    @property
    def index(self) -> FixtureIndex: ...
    @property
    def fixtures(self) -> tuple[Fixture, ...]: ...
    def find(self, name: str) -> Fixture | None: ...
    def is_added(self, name: str) -> bool: ...
    def add(self, fixture: Fixture) -> bool: ...
    def remove(self, name: str) -> bool: ...
    def put_file_fixture(self, fixture: Fixture) -> None: ...
    def replace_fixtures(self, fixtures: Iterable[Fixture]) -> None: ...
    def next_request(self) -> int: ...
    def take_play(self, fixture: str, turn: int) -> int: ...
    def hits(self, fixture: str) -> int: ...
    def plays(self) -> dict[tuple[str, int], int]: ...
    def take_header_fault(self, key: str) -> int: ...
    def record(self, entry: Entry) -> Entry: ...
    def entries(self) -> list[Entry]: ...
    def clear_journal(self) -> None: ...
    def reset(self) -> None: ...


class MockStore:
    """The journal, play counts, used-up header faults and run-time conversations of one mock."""

    def __init__(self, fixtures: Sequence[Fixture], journal_size: int) -> None:
        self._lock = threading.RLock()
        self._base: tuple[Fixture, ...] = tuple(fixtures)  # from files; swapped whole by --watch
        self._added: dict[str, Fixture] = {}  # name -> conversation added at run time
        self._removed: set[str] = set()  # names of file conversations deleted at run time
        self._plays: collections.Counter[tuple[str, int]] = collections.Counter()  # (fixture, turn) -> requests
        self._hits: collections.Counter[str] = collections.Counter()  # fixture -> requests
        self._header_faults: collections.Counter[str] = collections.Counter()  # header fault key -> uses
        self._requests = 0  # numbers each request, to seed its RNG
        self.journal: collections.deque[Entry] = collections.deque(maxlen=journal_size)
        self._index = FixtureIndex(self._base)
        self._served: tuple[Fixture, ...] = self._base

    # -- what is served -------------------------------------------------------------------------------
    @property
    def index(self) -> FixtureIndex:
        """The index of the conversations served now; a changed set is a new index, never a half-built one."""
        return self._index

    @property
    def fixtures(self) -> tuple[Fixture, ...]:
        """The conversations served now: those from files, then those added at run time."""
        return self._served

    def find(self, name: str) -> Fixture | None:
        return next((fixture for fixture in self._served if fixture.name == name), None)

    def is_added(self, name: str) -> bool:
        return name in self._added

    def add(self, fixture: Fixture) -> bool:
        """Serve ``fixture`` until the next reset; one of the same name is replaced. True when it replaced one."""
        with self._lock:
            replaced = self.find(fixture.name) is not None
            self._added.pop(fixture.name, None)
            self._added[fixture.name] = fixture
            self._forget(fixture.name)
            if replaced:
                self._rebuild()
            else:  # the common case: index just this one
                self._index.add(fixture)
                self._served = (*self._served, fixture)
            return replaced

    def remove(self, name: str) -> bool:
        """Stop serving the conversation ``name`` until the next reset; False when none has that name."""
        with self._lock:
            if self.find(name) is None:
                return False
            self._added.pop(name, None)
            if any(fixture.name == name for fixture in self._base):
                self._removed.add(name)
            self._forget(name)
            self._rebuild()
            return True

    def put_file_fixture(self, fixture: Fixture) -> None:
        """Serve a conversation just written to the fixtures folder (recording) as if loaded at start-up."""
        with self._lock:
            self._base = (*(f for f in self._base if f.name != fixture.name), fixture)
            self._forget(fixture.name)
            self._rebuild()

    def replace_fixtures(self, fixtures: Iterable[Fixture]) -> None:
        """Swap the conversations from files (``--watch``); a changed conversation's scenarios start over."""
        with self._lock:
            new = tuple(fixtures)
            kept = {id(fixture) for fixture in new}
            for old in self._base:
                if id(old) not in kept:
                    self._forget(old.name)
            self._base = new
            self._rebuild()

    # -- counting ---------------------------------------------------------------------------------------
    def next_request(self) -> int:
        """The number of this request since the last reset, from 1; it seeds the request's RNG."""
        with self._lock:
            self._requests += 1
            return self._requests

    def take_play(self, fixture: str, turn: int) -> int:
        """How many requests this turn answered before this one (0 for the first), counting this one."""
        with self._lock:
            play = self._plays[(fixture, turn)]
            self._plays[(fixture, turn)] += 1
            self._hits[fixture] += 1
            return play

    def hits(self, fixture: str) -> int:
        """Requests the conversation ``fixture`` answered since the last reset."""
        return self._hits[fixture]

    def plays(self) -> dict[tuple[str, int], int]:
        """Requests each (fixture, turn) answered since the last reset: where every scenario stands."""
        with self._lock:
            return dict(self._plays)

    def take_header_fault(self, key: str) -> int:
        """How many times the header fault ``key`` applied before this request, counting this one."""
        with self._lock:
            used = self._header_faults[key]
            self._header_faults[key] += 1
            return used

    # -- journal and reset ------------------------------------------------------------------------------
    def record(self, entry: Entry) -> Entry:
        entry = bounded_entry(entry)
        self.journal.append(entry)
        return entry

    def entries(self) -> list[Entry]:
        """The journal, oldest first."""
        return list(self.journal)

    def clear_journal(self) -> None:
        self.journal.clear()

    def reset(self) -> None:
        """Back to the start: empty journal, scenarios and header faults from the top, no run-time changes."""
        with self._lock:
            self.journal.clear()
            self._plays.clear()
            self._hits.clear()
            self._header_faults.clear()
            self._requests = 0
            if self._added or self._removed:
                self._added.clear()
                self._removed.clear()
                self._rebuild()

    # -- internals --------------------------------------------------------------------------------------
    def _forget(self, name: str) -> None:
        for key in [key for key in self._plays if key[0] == name]:
            del self._plays[key]
        self._hits.pop(name, None)

    def _rebuild(self) -> None:
        served = tuple(
            fixture for fixture in self._base if fixture.name not in self._removed and fixture.name not in self._added
        )
        served += tuple(self._added.values())
        self._index = FixtureIndex(served)  # built whole, then swapped in one assignment
        self._served = served


# -- what the routes share ----------------------------------------------------------------------------


class UnmatchedHandler(Protocol):
    """Answers a request no fixture matches, in place of the no-match error (``--record-missing``: the recorder)."""

    async def forward(self, request: Request, raw: bytes) -> Response: ...


# Makes the handler from the mock's contract and the way to serve a new conversation (one just recorded).
OnUnmatched = Callable[[ContractValidator, Callable[[Fixture], object]], UnmatchedHandler]


class MockState:
    """What the routes share: the fixed validator and settings, and the store of everything that changes."""

    def __init__(
        self,
        fixtures: list[Fixture],
        validator: ContractValidator,
        settings: Settings,
        folder: Path | None = None,
        watcher: FixtureWatcher | None = None,
        store: Store | None = None,
        on_unmatched: OnUnmatched | None = None,
    ) -> None:
        self.validator = validator
        self.dialect = Dialect.of(validator.spec)
        self.settings = settings
        self.folder = folder
        self.watcher = watcher
        self.store: Store = store if store is not None else MockStore(fixtures, settings.journal_size)
        self.unmatched = on_unmatched(validator, self.add_fixture) if on_unmatched is not None else None
        self.admission = Admission()  # a burst of requests is taken in a few per turn of the loop

    @property
    def index(self) -> FixtureIndex:
        return self.store.index

    @property
    def journal(self) -> list[Entry]:
        """The journaled requests, oldest first, whichever process answered them."""
        return self.store.entries()

    @property
    def fixture_count(self) -> int:
        return len(self.store.fixtures)

    def next_draws(self) -> RequestDraws:
        """The random choices of the next request, from the server seed and its number: replays are exact."""
        return RequestDraws(self.settings.seed, self.store.next_request())

    def add_fixture(self, fixture: Fixture) -> bool:
        """Check and serve ``fixture``; True when it replaced one of the same name.

        A conversation from a file in the fixtures folder (one just recorded) stays like those loaded at
        start-up; any other is served until the next reset.
        """
        check_fixture(fixture, self.validator, self.settings.seed)
        if (
            self.folder is not None
            and fixture.source.is_file()
            and fixture.source.resolve().is_relative_to(self.folder.resolve())
        ):
            replaced = self.store.find(fixture.name) is not None
            self.store.put_file_fixture(fixture)
            return replaced
        return self.store.add(fixture)


def fixture_summary(state: MockState, fixture: Fixture) -> dict[str, Any]:
    """One served conversation as ``GET /__mock/fixtures`` and the dashboard list it: its file, turns and hits."""
    file: str | None = None
    if str(fixture.source) not in (API_SOURCE, PYTHON_SOURCE):
        try:
            file = (
                fixture.source.resolve().relative_to(state.folder.resolve()).as_posix()
                if state.folder
                else str(fixture.source)
            )
        except ValueError:
            file = str(fixture.source)
    return {
        "name": fixture.name,
        "file": file,
        "turns": len(fixture.turns),
        "hits": state.store.hits(fixture.name),
        "added": state.store.is_added(fixture.name),
    }
