"""Make a failing JSON request smaller, one edit at a time, while it stays valid and still fails.

A live server answers each try with a request, so the reducer spends them where a person would
look first: whole optional fields and array items (removed in halves, so one key that matters
among sixty costs about a dozen tries), then what is left inside them, then strings emptied or cut
to a few ASCII characters and numbers set to 0 or 1. Every candidate is checked locally first
(``allowed``: the document accepts it), so only requests the contract allows are sent, and
``still_fails`` is asked at most ``budget`` times. Free-form objects (``additionalProperties``)
are where this matters most: their generated keys carry no meaning, and they go first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

JsonPath = tuple[str | int, ...]
# Candidates looked at (locally) per reduction, sent or not: bounds the CPU a deep document can cost.
MAX_CANDIDATES = 5000
SHORT_STRING = 8  # a string that cannot be emptied is cut to this many ASCII characters


@dataclass(frozen=True)
class Reduction:
    """The smallest value found, and the tries it cost."""

    value: Any
    asked: int  # calls of still_fails: the requests sent
    kept: int  # edits that still failed, so were kept


def reduce_json(
    value: Any,
    still_fails: Callable[[Any], bool],
    allowed: Callable[[Any], bool],
    budget: int,
) -> Reduction:
    """The smallest variant of ``value`` that ``allowed`` accepts and ``still_fails`` confirms.

    ``still_fails`` may also end the reduction early by raising :class:`StopReducing` (a server
    that stopped answering).
    """
    reducer = _Reducer(value, still_fails, allowed, budget)
    try:
        reducer.reduce(())
    except StopReducing:
        pass
    return Reduction(reducer.current, reducer.asked, reducer.kept)


class StopReducing(Exception):
    """Raised by ``still_fails`` when no more requests should be sent."""


class _Reducer:
    def __init__(
        self, value: Any, still_fails: Callable[[Any], bool], allowed: Callable[[Any], bool], budget: int
    ) -> None:
        self.current = value
        self.still_fails = still_fails
        self.allowed = allowed
        self.budget = budget
        self.asked = 0
        self.kept = 0
        self.looked = 0
        self.seen = {_key(value)}

    def spent(self) -> bool:
        return self.asked >= self.budget or self.looked >= MAX_CANDIDATES

    def attempt(self, candidate: Any) -> bool:
        """Whether ``candidate`` is valid and still fails; it becomes the current value if so."""
        if self.spent():
            return False
        key = _key(candidate)
        if key in self.seen:
            return False
        self.seen.add(key)
        self.looked += 1
        if not self.allowed(candidate):
            return False
        self.asked += 1
        if not self.still_fails(candidate):
            return False
        self.current = candidate
        self.kept += 1
        return True

    def reduce(self, path: JsonPath) -> None:
        node = _get(self.current, path)
        if isinstance(node, dict):
            self.drop_members(path, list(node))
            for name in list(_get(self.current, path)):
                if self.spent():
                    return
                self.reduce((*path, name))
        elif isinstance(node, list):
            self.drop_members(path, list(range(len(node))))
            for index in range(len(_get(self.current, path))):
                if self.spent():
                    return
                self.reduce((*path, index))
        else:
            for simpler in _simpler_scalars(node):
                if self.attempt(_replace(self.current, path, simpler)):
                    return

    def drop_members(self, path: JsonPath, members: Sequence[str | int]) -> None:
        """Remove as many members (keys, or item indexes) of the container at ``path`` as can go.

        All at once first, then halves of what could not go, down to single members: a few tries
        when most members do not matter, one per member at worst.
        """
        original = _get(self.current, path)
        removed: set[str | int] = set()
        pending = [list(members)] if members else []
        while pending and not self.spent():
            chunk = pending.pop(0)
            candidate = _replace(self.current, path, _without(original, removed | set(chunk)))
            if self.attempt(candidate):
                removed |= set(chunk)
            elif len(chunk) > 1:
                middle = len(chunk) // 2
                pending[:0] = [chunk[:middle], chunk[middle:]]


def _simpler_scalars(value: Any) -> list[Any]:
    """Simpler values of the same type, simplest first: "" then a short ASCII cut; 0 then 1."""
    if isinstance(value, str):
        ascii_only = "".join(ch for ch in value if " " <= ch <= "~")
        return [text for text in dict.fromkeys(["", ascii_only[:SHORT_STRING]]) if text != value]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int):
        return [number for number in (0, 1) if abs(number) < abs(value)]
    if isinstance(value, float):
        return [number for number in (0.0, 1.0) if number != value and (abs(number) < abs(value) or value % 1)]
    return []


def _without(container: Any, members: set[str | int]) -> Any:
    if isinstance(container, dict):
        return {name: item for name, item in container.items() if name not in members}
    return [item for index, item in enumerate(container) if index not in members]


def _get(value: Any, path: JsonPath) -> Any:
    for step in path:
        value = value[step]
    return value


def _replace(value: Any, path: JsonPath, new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced, sharing every untouched branch."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(value[head], rest, new)  # type: ignore[index]
    return copy


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
