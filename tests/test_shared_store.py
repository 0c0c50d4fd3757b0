"""The shared store: two stores on one file read the same, and a count taken by two processes is never taken twice.

What every store does is tested against this one too, in tests/test_state.py.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest
from mock_helpers import answer_in as answer
from mock_helpers import one_turn as fixture

from mockserver.shared_store import TRIM_EVERY, SharedStore, create_state_file

HELLO, BYE = fixture("hello", "Hi?", "Hello."), fixture("bye", "Bye?", "Bye.")


@pytest.fixture()
def state_file(tmp_path: Path) -> Path:
    return create_state_file(tmp_path / "state.sqlite3")


def test_two_workers_on_one_file_count_journal_and_reset_as_one(state_file: Path) -> None:
    first, second = (SharedStore(state_file, [HELLO, BYE], journal_size=3) for _ in range(2))
    assert [first.take_play("hello", 1), second.take_play("hello", 1), first.take_play("hello", 1)] == [0, 1, 2]
    assert [first.next_request(), second.next_request()] == [1, 2]
    assert [second.take_header_fault("k"), first.take_header_fault("k")] == [0, 1]
    assert first.hits("hello") == second.hits("hello") == 3 and second.hits("bye") == 0
    for n in range(5):
        (first if n % 2 else second).record({"n": n})
    assert [entry["n"] for entry in first.entries()] == [2, 3, 4], "only the last journal_size are kept"
    assert second.entries() == first.entries() and {entry["worker"] for entry in first.entries()} == {os.getpid()}
    for n in range(5, 200):
        first.record({"n": n})
    assert [entry["n"] for entry in second.entries()] == [197, 198, 199]
    with contextlib.closing(sqlite3.connect(state_file)) as db:
        assert db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] <= 3 + TRIM_EVERY, "older rows are dropped"
    second.reset()
    assert first.entries() == [] and first.hits("hello") == 0
    assert (first.take_play("hello", 1), first.next_request(), second.take_header_fault("k")) == (0, 1, 0)


def test_conversations_changed_in_one_worker_are_served_by_the_other(state_file: Path) -> None:
    first, second = (SharedStore(state_file, [HELLO, BYE], journal_size=10) for _ in range(2))
    second.take_play("hello", 1)
    assert first.add(fixture("extra", "Extra?", "Extra.")) is False
    assert first.add(fixture("hello", "Hi?", "Overridden.")) is True
    assert second.hits("hello") == 0, "a replaced conversation's scenarios start over"
    assert second.remove("bye") is True and first.remove("bye") is False
    assert [f.name for f in second.fixtures] == ["extra", "hello"] and second.is_added("extra")
    assert (answer(second, "Hi?"), answer(second, "Bye?"), answer(second, "Extra?")) == ("Overridden.", None, "Extra.")
    assert second.find("extra") == fixture("extra", "Extra?", "Extra.")
    first.reset()
    assert second.fixtures == (HELLO, BYE) and not second.is_added("extra")
    assert (answer(second, "Hi?"), answer(second, "Bye?"), answer(second, "Extra?")) == ("Hello.", "Bye.", None)


def _take_plays(state_file: Path, count: int, results: multiprocessing.Queue[list[int]]) -> None:
    store = SharedStore(state_file, [HELLO], journal_size=10)
    results.put([store.take_play("hello", 1) for _ in range(count)])


def test_plays_taken_by_two_processes_at_once_are_each_taken_once(state_file: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[list[int]] = context.Queue()
    processes = [context.Process(target=_take_plays, args=(state_file, 300, results)) for _ in range(2)]
    for process in processes:
        process.start()
    taken = results.get(timeout=60) + results.get(timeout=60)
    for process in processes:
        process.join(timeout=30)
    assert sorted(taken) == list(range(600))
    assert SharedStore(state_file, [HELLO], 10).hits("hello") == 600
