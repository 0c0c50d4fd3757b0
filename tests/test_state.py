"""The state store: what a run changes, and the one reset that undoes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockserver.fixtures import Fixture, fixture_from_dict
from mockserver.matching import Match
from mockserver.state import MockStore


def fixture(name: str, question: str, answer: str) -> Fixture:
    return fixture_from_dict(
        {
            "name": name,
            "conversation": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        }
    )


def answer(store: MockStore, question: str) -> str | None:
    found = store.index.lookup({"messages": [{"role": "user", "content": question}]})
    return found.turn.content if isinstance(found, Match) else None


def test_added_replaced_and_removed_conversations_are_undone_by_reset() -> None:
    hello, bye = fixture("hello", "Hi?", "Hello."), fixture("bye", "Bye?", "Bye.")
    store = MockStore([hello, bye], journal_size=10)
    assert store.add(fixture("extra", "Extra?", "Extra.")) is False
    assert store.add(fixture("hello", "Hi?", "Overridden.")) is True
    assert store.remove("bye") is True and store.remove("bye") is False
    assert [f.name for f in store.fixtures] == ["extra", "hello"]
    assert (answer(store, "Hi?"), answer(store, "Bye?"), answer(store, "Extra?")) == ("Overridden.", None, "Extra.")
    store.reset()
    assert store.fixtures == (hello, bye)
    assert (answer(store, "Hi?"), answer(store, "Bye?"), answer(store, "Extra?")) == ("Hello.", "Bye.", None)


def test_counts_start_over_on_reset_and_for_a_changed_conversation() -> None:
    hello, bye = fixture("hello", "Hi?", "Hello."), fixture("bye", "Bye?", "Bye.")
    store = MockStore([hello, bye], journal_size=2)
    assert [store.take_play("hello", 1) for _ in range(3)] == [0, 1, 2]
    store.take_play("bye", 1)
    assert [store.next_request() for _ in range(2)] == [1, 2]
    assert [store.take_header_fault("k") for _ in range(2)] == [0, 1]
    for number in range(3):
        store.record({"n": number})
    assert list(store.journal) == [{"n": 1}, {"n": 2}], "the journal keeps its size"
    store.replace_fixtures([hello, fixture("bye", "Bye?", "Farewell.")])  # --watch: bye.yaml changed
    assert (store.hits("hello"), store.hits("bye")) == (3, 0)
    assert store.take_play("hello", 1) == 3 and store.take_play("bye", 1) == 0
    store.reset()
    assert (store.take_play("hello", 1), store.next_request(), store.take_header_fault("k")) == (0, 1, 0)
    assert list(store.journal) == [] and store.hits("hello") == 1


def test_a_conversation_written_to_the_folder_survives_the_reset() -> None:
    hello = fixture("hello", "Hi?", "Hello.")
    store = MockStore([hello], journal_size=10)
    store.put_file_fixture(fixture("recorded", "New?", "Recorded."))
    store.put_file_fixture(fixture("hello", "Hi?", "Re-recorded."))
    store.reset()
    assert [f.name for f in store.fixtures] == ["recorded", "hello"]
    assert (answer(store, "Hi?"), answer(store, "New?")) == ("Re-recorded.", "Recorded.")


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
