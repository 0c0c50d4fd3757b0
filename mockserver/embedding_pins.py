"""Vectors a fixture pins to an input: the fixture file's ``embeddings`` list, checked, and found by input.

Hashed vectors are unrelated to each other, which is right for code that only stores them and wrong for a test
of what ranks first. A fixture can therefore give the vector an input must get (``{input, vector, model}``); the
route returns it as written. Each entry is checked at start-up with its ``file:line``, like every other part of
a fixture: a vector must be finite numbers that fit a float32, since ``encoding_format: base64`` sends float32s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contract.core.schemas import is_finite_number
from contract.core.validate import short_json

from .embeddings import MAX_DIMENSIONS
from .fixture_parse import value_kind
from .fixture_reader import KeyPath, SourceLines

PIN_KEYS = ("input", "vector", "model")
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class PinnedVector:
    """The vector one fixture gives one input (for one model, or for any when ``model`` is None)."""

    input: str
    vector: tuple[float, ...]
    model: str | None
    fixture: str  # the fixture's name
    where: str  # file:line of the entry


def parse_pins(reader: SourceLines, raw: Any, fixture: str) -> tuple[PinnedVector, ...]:
    """The fixture's ``embeddings`` list, each entry checked; the same input twice (for one model) is refused."""
    path: KeyPath = ("embeddings",)
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else value_kind(raw)
        reader.fail(path, f"embeddings must be a non-empty list of {{input, vector}} entries, got {what}")
    pins: list[PinnedVector] = []
    first_at: dict[tuple[str | None, str], str] = {}
    for number, entry in enumerate(raw):
        at: KeyPath = (*path, number)
        if not isinstance(entry, dict):
            reader.fail(at, f"embedding {number + 1} must be a mapping with input and vector, got {value_kind(entry)}")
        reader.check_keys(entry, PIN_KEYS, at, "an embedding")
        for key in ("input", "vector"):
            if key not in entry:
                reader.fail(at, f"embedding {number + 1} has no {key}")
        text, model = entry["input"], entry.get("model")
        if not isinstance(text, str) or not text:
            reader.fail((*at, "input"), f"input must be a non-empty string, got {short_json(text)}")
        if model is not None and (not isinstance(model, str) or not model):
            reader.fail((*at, "model"), f"model must be a model name, got {short_json(model)}")
        vector = _parse_vector(reader, entry["vector"], (*at, "vector"))
        earlier = first_at.get((model, text))
        if earlier is not None:
            for_model = f" for model {model!r}" if model else ""
            reader.fail(at, f"input {short_json(text)} is pinned twice{for_model} (first at {earlier})")
        where = reader.where(at)
        first_at[(model, text)] = where
        pins.append(PinnedVector(text, vector, model, fixture, where))
    return tuple(pins)


def _parse_vector(reader: SourceLines, raw: Any, path: KeyPath) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else value_kind(raw)
        reader.fail(path, f"vector must be a non-empty list of numbers, got {what}")
    if len(raw) > MAX_DIMENSIONS:
        reader.fail(path, f"vector has {len(raw)} numbers; the most a request can ask for is {MAX_DIMENSIONS}")
    for position, value in enumerate(raw):
        if not is_finite_number(value) or abs(value) > FLOAT32_MAX:
            reader.fail(
                (*path, position),
                f"vector[{position}] must be a finite number that fits a float32, got {short_json(value)}",
            )
    return tuple(float(value) for value in raw)


class HasPins(Protocol):
    """What the table reads of a fixture: its pinned vectors."""

    @property
    def embeddings(self) -> tuple[PinnedVector, ...]: ...


class PinTable:
    """Every pin the served fixtures hold, found by (model, input): a pin for the model wins over one for
    any model, and among equals the fixture served last wins, as it does for conversations."""

    def __init__(self, fixtures: Iterable[HasPins]) -> None:
        self._by_key: dict[tuple[str | None, str], PinnedVector] = {}
        for fixture in fixtures:
            for pin in fixture.embeddings:
                self._by_key[(pin.model, pin.input)] = pin

    def __len__(self) -> int:
        return len(self._by_key)

    def find(self, model: str, text: str) -> PinnedVector | None:
        if not self._by_key:
            return None
        return self._by_key.get((model, text)) or self._by_key.get((None, text))


_last: tuple[Sequence[HasPins], PinTable] | None = None  # the served set the table was built for, and it


def pin_table(fixtures: Sequence[HasPins]) -> PinTable:
    """The table of ``fixtures``, built again only when the served set is another one (the stores hand out
    the same tuple until it changes), so a request pays one identity check."""
    global _last
    last = _last
    if last is not None and last[0] is fixtures:
        return last[1]
    table = PinTable(fixtures)
    _last = (fixtures, table)
    return table
