"""The state store: what a run changes, and the one reset that undoes it.

Every test of the ``Store`` interface runs against both stores: the in-process ``MockStore`` and the
``SharedStore`` that ``--workers`` processes share over one SQLite file (tests/test_shared_store.py holds
what only the shared store does: two workers, two processes). Between them the tests use every member
of the interface.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from mock_helpers import BUSY_THEN_FREE as SCENARIO
from mock_helpers import answer_in as answer
from mock_helpers import one_turn as fixture

from mockserver.fixtures import Fixture, fixture_from_dict
from mockserver.shared_store import SharedStore, create_state_file
from mockserver.state import MockStore, Store

NewStore = Callable[[Sequence[Fixture], int], Store]


@pytest.fixture(params=["memory", "shared"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewStore]:
    """Makes stores of one kind, each on its own state: ``new_store(fixtures, journal_size)``."""
    shared: list[SharedStore] = []

    def make(fixtures: Sequence[Fixture], journal_size: int) -> Store:
        if request.param == "memory":
            return MockStore(fixtures, journal_size)
        store = SharedStore(create_state_file(tmp_path / f"state-{len(shared)}.sqlite3"), fixtures, journal_size)
        shared.append(store)
        return store

    try:
        yield make
    finally:
        for store in shared:
            store.close()


def journal_of(store: Store) -> list[dict[str, object]]:
    """``store.entries()`` as they were recorded.

    The stores differ here by design: the shared store adds to each entry the pid of the worker that answered
    it (the journal and the dashboard show which worker served a request), the in-process store has one
    process and keeps each entry as it was recorded. Each behaviour is asserted, then the pid is taken off.
    """

    entries = store.entries()
    if isinstance(store, SharedStore):
        assert all(entry.pop("worker") == os.getpid() for entry in entries), entries
    else:
        assert all("worker" not in entry for entry in entries), entries
    return entries


def test_both_stores_meet_the_interface_the_app_uses(new_store: NewStore) -> None:
    hello = fixture("hello", "Hi?", "Hello.")
    store = new_store([hello], 10)
    assert store.fixtures == (hello,) and store.entries() == []
    assert store.find("hello") is hello and store.find("nobody") is None
    assert store.add(fixture("extra", "Extra?", "Extra.")) is False
    assert store.is_added("extra") and not store.is_added("hello")
    assert store.find("extra") == fixture("extra", "Extra?", "Extra.")
    long_header = "x" * 5000
    kept = store.record({"n": 1, "headers": {"cookie": long_header}})
    assert kept["headers"]["cookie"].startswith("x" * 4096) and "904 more characters cut" in kept["headers"]["cookie"]
    assert journal_of(store) == [kept], "the journal holds the entry as record() returned it"
    store.clear_journal()
    assert store.entries() == [] and store.is_added("extra"), "clearing the journal changes nothing else"


def test_added_replaced_and_removed_conversations_are_undone_by_reset(new_store: NewStore) -> None:
    hello, bye = fixture("hello", "Hi?", "Hello."), fixture("bye", "Bye?", "Bye.")
    store = new_store([hello, bye], 10)
    assert store.add(fixture("extra", "Extra?", "Extra.")) is False
    assert store.add(fixture("hello", "Hi?", "Overridden.")) is True
    assert store.remove("bye") is True and store.remove("bye") is False
    assert [f.name for f in store.fixtures] == ["extra", "hello"]
    assert (answer(store, "Hi?"), answer(store, "Bye?"), answer(store, "Extra?")) == ("Overridden.", None, "Extra.")
    store.reset()
    assert store.fixtures == (hello, bye)
    assert (answer(store, "Hi?"), answer(store, "Bye?"), answer(store, "Extra?")) == ("Hello.", "Bye.", None)


def test_counts_start_over_on_reset_and_for_a_changed_conversation(new_store: NewStore) -> None:
    hello, bye = fixture("hello", "Hi?", "Hello."), fixture("bye", "Bye?", "Bye.")
    store = new_store([hello, bye], 2)
    assert [store.take_play("hello", 1) for _ in range(3)] == [0, 1, 2]
    store.take_play("bye", 1)
    assert [store.next_request() for _ in range(2)] == [1, 2]
    assert [store.take_header_fault("k") for _ in range(2)] == [0, 1]
    for number in range(3):
        store.record({"n": number})
    # By design the in-process journal drops its oldest entry at once, while the shared one deletes old rows
    # only every TRIM_EVERY entries (tests/test_shared_store.py) and reads the newest journal_size: both show this.
    assert journal_of(store) == [{"n": 1}, {"n": 2}], "the journal keeps its size"

    store.replace_fixtures([hello, fixture("bye", "Bye?", "Farewell.")])  # --watch: bye.yaml changed
    assert (store.hits("hello"), store.hits("bye")) == (3, 0)
    assert store.take_play("hello", 1) == 3 and store.take_play("bye", 1) == 0
    store.reset()
    assert (store.take_play("hello", 1), store.next_request(), store.take_header_fault("k")) == (0, 1, 0)
    assert journal_of(store) == [] and store.hits("hello") == 1


def test_a_conversation_written_to_the_folder_survives_the_reset(new_store: NewStore) -> None:
    hello = fixture("hello", "Hi?", "Hello.")
    store = new_store([hello], 10)
    store.put_file_fixture(fixture("recorded", "New?", "Recorded."))
    store.put_file_fixture(fixture("hello", "Hi?", "Re-recorded."))
    store.reset()
    assert [f.name for f in store.fixtures] == ["recorded", "hello"]
    assert (answer(store, "Hi?"), answer(store, "New?")) == ("Re-recorded.", "Recorded.")


def test_both_stores_read_the_play_count_of_each_turn(new_store: NewStore) -> None:
    store = new_store([fixture_from_dict(SCENARIO, source="<test>")], 10)
    assert store.plays() == {}
    for _ in range(3):
        store.take_play("busy-then-free", 1)
    store.take_play("other", 3)
    assert store.plays() == {("busy-then-free", 1): 3, ("other", 3): 1}
    assert store.hits("busy-then-free") == 3
    store.reset()
    assert store.plays() == {}


def test_the_packages_export_their_public_names_and_ship_type_information() -> None:
    """What the docs name is importable from each package's top level, and both say they are typed (PEP 561)."""
    import contract
    import mockserver

    for package in (contract, mockserver):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
        assert (Path(package.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError):
        mockserver.no_such_name  # noqa: B018
