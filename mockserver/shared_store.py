"""The mock's state in one SQLite file, so that ``--workers`` answers the same whichever process serves.

Worker processes share nothing but the listening socket, yet a scenario must
play "429, then the answer" in order even when its two requests land on two
workers, and the journal must hold every request. SQLite is the simplest store
that guarantees it: it is in the standard library, a write holds the file's
write lock from its first read (a take is one ``UPDATE ... RETURNING`` or
upsert, its own transaction; a change of several rows is one ``BEGIN
IMMEDIATE`` transaction), so two workers can never both take play 3, and in
WAL mode reading the journal never waits for a writer. Writers queue on an
flock beside the file rather than in SQLite's sleeping busy handler. The file
is a temporary one that the supervisor creates before it starts the workers
and deletes when they have stopped; nothing in it has to survive a crash, so
commits skip fsync.

What the file holds:

- counters: the request number (it seeds each reply), plays per fixture turn
  (a fixture's hits are their sum), uses of each ``X-Mock-Fault ...; times=N``
  header fault;
- the journal: whole entries as JSON rows, each with the ``worker`` pid that
  answered; reads take the newest ``journal_size``, and older rows are
  dropped every ``TRIM_EVERY`` entries;
- conversations added and removed at run time, with a version number. An added
  conversation is stored as the built ``Fixture`` (pickled): the worker that
  took the POST has checked it against the contract, and the others take it as
  built. Each worker reads the version (one indexed read) whenever it looks up
  the served set, and rebuilds its index only when the version moved.

Conversations loaded from files are not in the file: every worker loads the
same folder at start. ``--watch`` and ``--record-missing`` change that set in
one process only, so the command line refuses them with ``--workers``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from .fixtures import Fixture
from .matching import FixtureIndex
from .state import Entry, bounded_entry

TRIM_EVERY = 64  # the journal drops entries past journal_size every this many, not on every request
LOCK_WAIT_SECONDS = 30.0  # how long a worker waits for another's transaction; each takes microseconds

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plays (fixture TEXT NOT NULL, turn INTEGER NOT NULL, count INTEGER NOT NULL,
                                  PRIMARY KEY (fixture, turn)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS header_faults (key TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS added (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                                  fixture BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS removed (name TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT OR IGNORE INTO counters VALUES ('requests', 0), ('fixtures_version', 0);
"""


class StateFileError(Exception):
    """The shared state file cannot be used (deleted, or its folder made read-only, while the server ran)."""


def create_state_file(path: Path) -> Path:
    """Create the shared file with its tables, in WAL mode; the supervisor calls this before any worker starts."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")  # stays with the file: every later connection uses it
        db.executescript(SCHEMA)
    return path


def _open(path: Path) -> tuple[sqlite3.Connection, BinaryIO]:
    """The database, opened read-write but never created (a new empty file would be another state), and the
    writers' lock file; StateFileError says why not."""
    try:
        db = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=LOCK_WAIT_SECONDS,
        )
        db.execute("PRAGMA synchronous = OFF")  # a temporary file: no commit needs to reach the disk
    except sqlite3.Error as exc:
        raise StateFileError(_unusable(path, exc)) from None
    try:
        return db, open(f"{path}.lock", "a+b")  # noqa: SIM115 - held open for the store's life
    except OSError as exc:
        db.close()
        raise StateFileError(_unusable(path, exc)) from None


def _unusable(path: Path, exc: Exception) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (
        f"the shared state file {path} cannot be used ({reason}); was it or its folder deleted or made "
        "read-only while the server ran?"
    )


class SharedStore:
    """The ``Store`` interface over a SQLite file that several worker processes open at once."""

    def __init__(self, path: Path | str, fixtures: Sequence[Fixture], journal_size: int) -> None:
        self._db, self._writer_queue = _open(Path(path))
        self._lock = threading.RLock()  # one connection, used by the event loop and by to_thread work
        self._journal_size = journal_size
        self._worker = os.getpid()
        self._base: tuple[Fixture, ...] = tuple(fixtures)  # from files; the same in every worker
        self._added: dict[str, Fixture] = {}  # name -> conversation added at run time, oldest first
        self._unpickled: dict[int, Fixture] = {}  # seq -> fixture, so a rebuild unpickles only new rows
        self._removed: frozenset[str] = frozenset()
        self._version: int | None = None  # of the run-time changes this worker's index reflects
        self._index = FixtureIndex(())
        self._served: tuple[Fixture, ...] = ()
        try:
            self._sync()
        except sqlite3.Error as exc:
            self.close()
            raise StateFileError(_unusable(Path(path), exc)) from None

    # -- what is served -------------------------------------------------------------------------------
    @property
    def index(self) -> FixtureIndex:
        self._sync()
        return self._index

    @property
    def fixtures(self) -> tuple[Fixture, ...]:
        self._sync()
        return self._served

    def find(self, name: str) -> Fixture | None:
        return next((fixture for fixture in self.fixtures if fixture.name == name), None)

    def is_added(self, name: str) -> bool:
        self._sync()
        return name in self._added

    def add(self, fixture: Fixture) -> bool:
        """Serve ``fixture`` in every worker until the next reset; True when it replaced one of the same name."""
        blob = pickle.dumps(fixture, protocol=pickle.HIGHEST_PROTOCOL)
        with self._write() as db:
            replaced = self._served_in(db, fixture.name)
            db.execute("DELETE FROM added WHERE name = ?", (fixture.name,))
            db.execute("INSERT INTO added (name, fixture) VALUES (?, ?)", (fixture.name, blob))
            self._forget(db, fixture.name)
            self._bump_version(db)
        self._sync()
        return replaced

    def remove(self, name: str) -> bool:
        """Stop serving ``name`` in every worker until the next reset; False when none has that name."""
        with self._write() as db:
            if not self._served_in(db, name):
                return False
            db.execute("DELETE FROM added WHERE name = ?", (name,))
            if any(fixture.name == name for fixture in self._base):
                db.execute("INSERT OR IGNORE INTO removed VALUES (?)", (name,))
            self._forget(db, name)
            self._bump_version(db)
        self._sync()
        return True

    def put_file_fixture(self, fixture: Fixture) -> None:
        """Serve a conversation written to the fixtures folder, in this worker (recording runs in one process)."""
        with self._write() as db:
            self._forget(db, fixture.name)
        with self._lock:
            self._base = (*(f for f in self._base if f.name != fixture.name), fixture)
            self._version = None
        self._sync()

    def replace_fixtures(self, fixtures: Iterable[Fixture]) -> None:
        """Swap the conversations from files in this worker (``--watch`` runs in one process)."""
        new = tuple(fixtures)
        kept = {id(fixture) for fixture in new}
        with self._write() as db:
            for old in self._base:
                if id(old) not in kept:
                    self._forget(db, old.name)
        with self._lock:
            self._base = new
            self._version = None
        self._sync()

    # -- counting ---------------------------------------------------------------------------------------
    def next_request(self) -> int:
        return self._take("UPDATE counters SET value = value + 1 WHERE name = 'requests' RETURNING value")

    def take_play(self, fixture: str, turn: int) -> int:
        return (
            self._take(
                "INSERT INTO plays VALUES (?, ?, 1) ON CONFLICT (fixture, turn) "
                "DO UPDATE SET count = count + 1 RETURNING count",
                (fixture, turn),
            )
            - 1
        )

    def hits(self, fixture: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT SUM(count) FROM plays WHERE fixture = ?", (fixture,)).fetchone()
        return int(row[0] or 0)

    def plays(self) -> dict[tuple[str, int], int]:
        """Requests each (fixture, turn) answered since the last reset, in every worker."""
        with self._lock:
            rows = self._db.execute("SELECT fixture, turn, count FROM plays").fetchall()
        return {(fixture, int(turn)): int(count) for fixture, turn, count in rows}

    def take_header_fault(self, key: str) -> int:
        return (
            self._take(
                "INSERT INTO header_faults VALUES (?, 1) ON CONFLICT (key) "
                "DO UPDATE SET count = count + 1 RETURNING count",
                (key,),
            )
            - 1
        )

    # -- journal and reset ------------------------------------------------------------------------------
    def record(self, entry: Entry) -> Entry:
        """Journal the finished entry with the pid of the worker that answered; keep the last ``journal_size``."""
        entry = bounded_entry(entry)
        row = json.dumps({**entry, "worker": self._worker})  # ASCII escapes: any string survives the round trip
        newest = self._take("INSERT INTO journal (entry) VALUES (?) RETURNING id", (row,))
        if newest % TRIM_EVERY == 0:  # older entries are out of sight already (entries() reads the newest)
            with self._write() as db:
                db.execute("DELETE FROM journal WHERE id <= ?", (newest - self._journal_size,))
        return entry

    def entries(self) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT entry FROM (SELECT id, entry FROM journal ORDER BY id DESC LIMIT ?) ORDER BY id",
                (self._journal_size,),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def clear_journal(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM journal")

    def reset(self) -> None:
        """Back to the start in every worker: empty journal, counters from zero, no run-time conversations."""
        with self._write() as db:
            for table in ("journal", "plays", "header_faults"):
                db.execute(f"DELETE FROM {table}")
            db.execute("UPDATE counters SET value = 0 WHERE name = 'requests'")
            changed = db.execute("SELECT EXISTS (SELECT 1 FROM added) OR EXISTS (SELECT 1 FROM removed)").fetchone()[0]
            if changed:
                db.execute("DELETE FROM added")
                db.execute("DELETE FROM removed")
                self._bump_version(db)
        self._sync()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._writer_queue.close()

    # -- internals --------------------------------------------------------------------------------------
    def _take(self, statement: str, parameters: tuple[object, ...] = ()) -> int:
        """Run one writing statement that returns a number, as its own transaction: the cheapest atomic take.

        A writing statement takes the database's write lock before its first read, so the read and the
        increment of an ``UPDATE ... RETURNING`` are one step for every process.
        """
        with self._lock, self._writer_turn():
            return int(self._db.execute(statement, parameters).fetchall()[0][0])  # stepped to the end: committed

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Writers first queue on an flock of a lock file beside the database: the kernel wakes the next one
        the moment the lock is released, where SQLite's own busy handler would poll with sleeps of 1 ms
        and more (tens of ms at worst, with the worker's event loop blocked all the while)."""
        fcntl.flock(self._writer_queue, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_queue, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Several statements as one transaction that holds the write lock from the first: atomic across processes."""
        with self._lock, self._writer_turn():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _served_in(self, db: sqlite3.Connection, name: str) -> bool:
        """Whether ``name`` is served now, read inside the caller's transaction rather than from this worker's copy."""
        if db.execute("SELECT 1 FROM added WHERE name = ?", (name,)).fetchone():
            return True
        return (
            any(fixture.name == name for fixture in self._base)
            and not db.execute("SELECT 1 FROM removed WHERE name = ?", (name,)).fetchone()
        )

    @staticmethod
    def _forget(db: sqlite3.Connection, name: str) -> None:
        db.execute("DELETE FROM plays WHERE fixture = ?", (name,))

    @staticmethod
    def _bump_version(db: sqlite3.Connection) -> None:
        db.execute("UPDATE counters SET value = value + 1 WHERE name = 'fixtures_version'")

    def _sync(self) -> None:
        """Rebuild this worker's served set and index if another worker (or this one) changed them."""
        with self._lock:
            version = self._db.execute("SELECT value FROM counters WHERE name = 'fixtures_version'").fetchone()[0]
            if version == self._version:
                return
            self._db.execute("BEGIN")  # one snapshot: the version and the rows it numbers
            try:
                version = self._db.execute("SELECT value FROM counters WHERE name = 'fixtures_version'").fetchone()[0]
                removed = frozenset(row[0] for row in self._db.execute("SELECT name FROM removed"))
                rows = self._db.execute("SELECT seq, name, fixture FROM added ORDER BY seq").fetchall()
            finally:
                self._db.execute("COMMIT")
            self._unpickled = {seq: self._unpickled.get(seq) or pickle.loads(blob) for seq, _, blob in rows}
            self._added = {name: self._unpickled[seq] for seq, name, _ in rows}
            self._removed = removed
            served = tuple(
                fixture
                for fixture in self._base
                if fixture.name not in self._removed and fixture.name not in self._added
            )
            served += tuple(self._added.values())
            self._index = FixtureIndex(served)  # built whole, then swapped in
            self._served = served
            self._version = version
