"""Find the fixture turn that answers a request, fast, and explain the closest ones when none does.

Every message is reduced to a canonical, hashable form (whitespace collapsed,
tool-call arguments as sorted JSON, images and audio by a hash of their bytes),
so a request is found with one dict lookup on its whole message list however
many fixtures are loaded. Turns whose prefix holds a matcher cannot be hashed
that way; they live in small buckets keyed by everything else about them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .canonical import (
    Canon,
    IndexedTurn,
    canonical_message,
    condition_failure,
    matcher_holds,
    message_text,
    normalise_needle,
    prefix_chain,
    role_of,
)
from .fixtures import Fixture, matcher_of
from .near_misses import NearMiss, explain
from .turns import AssistantTurn

NEAR_MISS_LIMIT = 3
NEAR_MISS_CANDIDATES = 256  # at most this many fixture turns are compared on a miss


@dataclass(frozen=True)
class Match:
    fixture: Fixture
    turn_index: int
    turn: AssistantTurn


class FixtureIndex:
    """All loaded fixture turns, indexed by their message prefix.

    Lookup is one dict probe for turns whose prefix is all literal, plus one probe per
    distinct matcher layout among turns with the request's message count and roles.
    """

    def __init__(self, fixtures: Iterable[Fixture] = ()) -> None:
        self._lock = threading.Lock()
        self._order = 0
        self._exact: dict[tuple[Canon, ...], list[IndexedTurn]] = {}
        # (message count, roles) -> matcher positions -> prefix with None at those positions -> entries
        self._patterns: dict[
            tuple[int, tuple[str, ...]], dict[frozenset[int], dict[tuple[Any, ...], list[IndexedTurn]]]
        ] = {}
        self._needle_indexes: dict[
            Any, tuple[list[IndexedTurn], _NeedleIndex]
        ] = {}  # bucket's place -> (it, its index)
        self._by_prefix: dict[int, list[IndexedTurn]] = {}  # near misses: chain hash of a leading run -> turns
        self._by_length: dict[int, list[IndexedTurn]] = {}
        self._all: list[IndexedTurn] = []
        self._fixtures: list[Fixture] = []
        for fixture in fixtures:
            self.add(fixture)

    def __len__(self) -> int:
        return len(self._fixtures)

    def add(self, fixture: Fixture) -> None:
        """Index every assistant turn of ``fixture``; on a tie it wins over those added before."""
        with self._lock:
            self._fixtures.append(fixture)
            canon = [None if matcher_of(m) is not None else canonical_message(m) for m in fixture.conversation]
            roles = tuple(role_of(m) for m in fixture.conversation)
            literal_run = next((i for i, c in enumerate(canon) if c is None), len(canon))
            chain = prefix_chain(canon[:literal_run])
            previous = 0
            for turn_index in sorted(fixture.turns):
                self._order += 1
                prefix = tuple(canon[:turn_index])
                matchers = tuple(
                    (i, matcher_of(fixture.conversation[i]) or {}) for i in range(turn_index) if canon[i] is None
                )
                entry = IndexedTurn(self._order, fixture, turn_index, prefix, matchers, roles[:turn_index])
                if not matchers:
                    _insert(self._exact, prefix, entry)
                else:
                    layouts = self._patterns.setdefault((turn_index, entry.roles), {})
                    buckets = layouts.setdefault(frozenset(i for i, _ in matchers), {})
                    _insert(buckets, prefix, entry)
                for k in range(previous, min(turn_index, literal_run)):
                    self._by_prefix.setdefault(chain[k], []).append(entry)
                previous = max(previous, turn_index)
                self._by_length.setdefault(turn_index, []).append(entry)
                self._all.append(entry)

    def lookup(self, body: dict[str, Any]) -> Match | list[NearMiss]:
        """The turn that answers ``body``, or the closest turns (at most 3) with what differs."""
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            messages = []
        canon = tuple(canonical_message(m) for m in messages)
        for entry in self._exact.get(canon, ()):
            if condition_failure(entry.fixture.match, body) is None:
                return Match(entry.fixture, entry.turn_index, entry.fixture.turns[entry.turn_index])
        best: IndexedTurn | None = None
        for place, bucket in self._matcher_buckets(messages, canon):
            for entry in self._needles(place, bucket).candidates(messages):  # best first: the first that matches
                if best is not None and entry.priority <= best.priority:
                    break
                if (
                    all(matcher_holds(m, message_text(messages[i])) for i, m in entry.matchers)
                    and condition_failure(entry.fixture.match, body) is None
                ):
                    best = entry
                    break
        if best is not None:
            return Match(best.fixture, best.turn_index, best.fixture.turns[best.turn_index])
        return self._near_misses(body, messages, canon)

    # -- internals -------------------------------------------------------------------------------
    def _matcher_candidates(self, messages: list[Any], canon: tuple[Canon, ...]) -> Iterable[IndexedTurn]:
        for _, bucket in self._matcher_buckets(messages, canon):
            yield from bucket

    def _matcher_buckets(
        self, messages: list[Any], canon: tuple[Canon, ...]
    ) -> Iterable[tuple[Any, list[IndexedTurn]]]:
        """Where each bucket is, and its turns: those that match the request but for their matchers."""
        shape = (len(messages), tuple(role_of(m) for m in messages))
        layouts = self._patterns.get(shape)
        if not layouts:
            return
        for positions, buckets in list(layouts.items()):
            key = tuple(None if i in positions else c for i, c in enumerate(canon))
            bucket = buckets.get(key)
            if bucket:
                yield (shape, positions, key), bucket

    def _needles(self, place: Any, bucket: list[IndexedTurn]) -> _NeedleIndex:
        """The bucket's needle index, built on the first lookup after the bucket changed (it is then a new list)."""
        built = self._needle_indexes.get(place)
        if built is None or built[0] is not bucket:
            built = (bucket, _NeedleIndex(bucket))
            self._needle_indexes[place] = built
        return built[1]

    def _near_misses(self, body: dict[str, Any], messages: list[Any], canon: tuple[Canon, ...]) -> list[NearMiss]:
        """Compare a bounded set of likely candidates; see docs/fixtures.md, "Near misses", for which."""
        chosen: dict[int, IndexedTurn] = {}

        def take(entries: Iterable[IndexedTurn]) -> None:
            for entry in entries:
                if len(chosen) >= NEAR_MISS_CANDIDATES:
                    return
                chosen.setdefault(entry.order, entry)

        take(self._exact.get(canon, ()))
        take(self._matcher_candidates(messages, canon))
        chain = prefix_chain(canon)
        for k in range(len(chain) - 1, -1, -1):
            take(self._by_prefix.get(chain[k], ()))
        take(self._by_length.get(len(messages), ()))
        if len(chosen) < NEAR_MISS_LIMIT:
            take(self._all)
        scored = [explain(entry, body, messages, canon) for entry in chosen.values()]
        scored.sort(key=lambda item: (item[0], item[1].order), reverse=True)
        misses: list[NearMiss] = []
        named: set[int] = set()
        for _, entry, miss in scored:
            if id(entry.fixture) in named:
                continue
            named.add(id(entry.fixture))
            misses.append(miss)
            if len(misses) == NEAR_MISS_LIMIT:
                break
        return misses


def _insert(buckets: dict[Any, list[IndexedTurn]], key: Any, entry: IndexedTurn) -> None:
    """Keep a bucket best first; the list is replaced, never changed, so a reader never sees it half-done."""
    entries = list(buckets.get(key, ()))
    bisect.insort(entries, entry, key=_best_first)
    buckets[key] = entries


def _best_first(entry: IndexedTurn) -> tuple[int, int]:
    return (-len(entry.fixture.match), -entry.order)


GRAM = 4  # characters of a needle that index it; a shorter needle is checked on every lookup


class _NeedleIndex:
    """The turns of one matcher bucket, found by a piece of their ``contains`` needles.

    Turns that differ only in their matchers share a bucket, and checking each one's needle against the
    request made a lookup cost as much as the bucket is large (10,000 fixtures, one in ten with a
    needle: 2 to 3 times the cost with 10). Each turn is indexed here by the rarest GRAM characters of
    its longest needle: a request can only match turns whose piece occurs in its message at that
    position, and those are found with at most as many probes as the message or the index is long,
    whichever is shorter. Turns without a needle that long are checked every time.
    """

    def __init__(self, entries: Sequence[IndexedTurn]) -> None:
        chosen = {entry.order: _longest_needle(entry) for entry in entries}
        counts: dict[tuple[int, str], int] = {}
        for position_needle in chosen.values():
            if position_needle is not None:
                position, needle = position_needle
                for gram in {needle[i : i + GRAM] for i in range(len(needle) - GRAM + 1)}:
                    counts[(position, gram)] = counts.get((position, gram), 0) + 1
        self.by_gram: dict[int, dict[str, list[IndexedTurn]]] = {}  # message position -> piece -> turns
        self.unindexed: list[IndexedTurn] = []
        for entry in entries:
            position_needle = chosen[entry.order]
            if position_needle is None:
                self.unindexed.append(entry)
                continue
            position, needle = position_needle
            gram = min(
                (needle[i : i + GRAM] for i in range(len(needle) - GRAM + 1)),
                key=lambda piece: counts[(position, piece)],
            )
            self.by_gram.setdefault(position, {}).setdefault(gram, []).append(entry)

    def candidates(self, messages: Sequence[Any]) -> list[IndexedTurn]:
        """The turns whose indexed piece is in the request, and the unindexed ones; best first."""
        found = list(self.unindexed)
        for position, grams in self.by_gram.items():
            text = message_text(messages[position])
            if len(text) - GRAM + 1 <= len(grams):
                for piece in {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}:
                    found.extend(grams.get(piece, ()))
            else:
                for piece, entries in grams.items():
                    if piece in text:
                        found.extend(entries)
        found.sort(key=_best_first)
        return found


def _longest_needle(entry: IndexedTurn) -> tuple[int, str] | None:
    needles = [
        (position, normalise_needle(matcher["contains"]))
        for position, matcher in entry.matchers
        if isinstance(matcher.get("contains"), str)
    ]
    needles = [(position, needle) for position, needle in needles if len(needle) >= GRAM]
    return max(needles, key=lambda item: len(item[1])) if needles else None
