"""``--watch``: pick up edited, added and removed fixture files without a restart.

A thread polls the folder (every file's modification time and size; no extra
dependency, and the same on every platform and file system). On a change it
loads and checks the whole set away from the event loop, reusing what it
loaded before for files that did not change, and hands the new set over in one
swap. A set that fails keeps the previous one serving and logs the one line
``file:line: what is wrong``, so a half-saved edit never takes the mock down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .fixtures import (
    FIXTURE_SUFFIXES,
    Fixture,
    FixtureError,
    check_unique_names,
    fixture_files,
    folder_files,
    load_fixture_file,
)
from .settings import DEFAULT_WATCH_INTERVAL

logger = logging.getLogger("mockserver")

Stamp = tuple[int, int]  # (mtime in ns, size)


class FixtureWatcher:
    """Loads a fixture folder, then reloads it whenever a file in it changes."""

    def __init__(
        self, folder: Path, check: Callable[[Fixture], None], interval: float = DEFAULT_WATCH_INTERVAL
    ) -> None:
        self.folder = Path(folder)
        self.interval = interval
        self._check = check
        self._seen: dict[Path, Stamp] = {}  # the folder as last polled
        self._loaded: dict[Path, tuple[Stamp, Fixture]] = {}  # checked fixtures of the last good set
        self._support: dict[Path, Stamp] = {}  # other files (WAVs) of the last good set
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> list[Fixture]:
        """The folder's fixtures, checked; FixtureError when the set is broken. Start-up uses this too."""
        self._seen = self._snapshot()
        return self._load(self._seen)

    def start(self, apply: Callable[[Sequence[Fixture]], None]) -> None:
        """Poll in a daemon thread and pass every good new set to ``apply``."""
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.wait(self.interval):
                self.poll(apply)

        self._thread = threading.Thread(target=run, name=f"mockserver-watch:{self.folder}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def poll(self, apply: Callable[[Sequence[Fixture]], None]) -> bool:
        """One look at the folder; True when a new set was applied."""
        try:
            snapshot = self._snapshot()
            if snapshot == self._seen:
                return False
            changed = sorted(
                path.relative_to(self.folder).as_posix()
                for path in {*snapshot, *self._seen}
                if snapshot.get(path) != self._seen.get(path)
            )
            self._seen = snapshot
            fixtures = self._load(snapshot)
        except FixtureError as exc:
            logger.error("%s (still serving the fixtures loaded before)", exc)
            return False
        except Exception:  # never let a surprise end the watching
            logger.exception("reloading the fixtures in %s failed; still serving the ones loaded before", self.folder)
            return False
        apply(fixtures)
        logger.info("reloaded %d fixtures from %s (changed: %s)", len(fixtures), self.folder, ", ".join(changed))
        return True

    def _snapshot(self) -> dict[Path, Stamp]:
        if not self.folder.is_dir():
            raise FixtureError(f"{self.folder}: the fixtures folder is gone")
        snapshot: dict[Path, Stamp] = {}
        for path in folder_files(self.folder):
            try:
                stat = path.stat()
            except OSError:  # removed between listing and looking
                continue
            snapshot[path] = (stat.st_mtime_ns, stat.st_size)
        return snapshot

    def _load(self, snapshot: dict[Path, Stamp]) -> list[Fixture]:
        support = {path: stamp for path, stamp in snapshot.items() if path.suffix.lower() not in FIXTURE_SUFFIXES}
        reuse = self._loaded if support == self._support else {}  # a changed WAV may change any fixture
        loaded: dict[Path, tuple[Stamp, Fixture]] = {}
        fixtures: list[Fixture] = []
        for path in fixture_files(self.folder):
            stamp = snapshot.get(path)
            previous = reuse.get(path)
            if previous is not None and previous[0] == stamp:
                fixture = previous[1]
            else:
                fixture = load_fixture_file(path, root=self.folder)
                self._check(fixture)
            if stamp is not None:
                loaded[path] = (stamp, fixture)
            fixtures.append(fixture)
        check_unique_names(fixtures)
        self._loaded, self._support = loaded, support
        return fixtures
