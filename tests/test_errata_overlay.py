"""contract/core/dialects/errata.yaml, the errata as an Overlay 1.0 document: applied to the seed it gives
openapi.yaml, each action says what it changes, and its erratum numbers are those of docs/errata.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.core.overlay import Overlay, apply_overlay, parse_overlay

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "data" / "seed-openapi.yaml"
CONTRACT = ROOT / "openapi.yaml"
ERRATA_OVERLAY = ROOT / "contract" / "core" / "dialects" / "errata.yaml"
ERRATA_DOC = ROOT / "docs" / "errata.md"
DRIFT = "openapi.yaml and contract/core/dialects/errata.yaml have drifted: change both"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@pytest.fixture(scope="module")
def raw_overlay() -> dict[str, Any]:
    return yaml.safe_load(ERRATA_OVERLAY.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def overlay(raw_overlay: dict[str, Any]) -> Overlay:
    return parse_overlay(raw_overlay, str(ERRATA_OVERLAY.relative_to(ROOT)))


def _step(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _NAME.fullmatch(str(key)):
        return f"{path}.{key}"
    return f"{path}[{str(key)!r}]"


def first_difference(got: Any, want: Any, path: str = "$") -> str | None:
    """The JSONPath of the first place where ``got`` and ``want`` differ, with what each holds; None if equal."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in [*want, *(key for key in got if key not in want)]:
            if key not in got:
                return f"{_step(path, key)} is missing (openapi.yaml has {want[key]!r})"
            if key not in want:
                return f"{_step(path, key)} is not in openapi.yaml (the overlay gives {got[key]!r})"
            found = first_difference(got[key], want[key], _step(path, key))
            if found:
                return found
        return None
    if isinstance(got, list) and isinstance(want, list):
        for index, (left, right) in enumerate(zip(got, want)):
            found = first_difference(left, right, _step(path, index))
            if found:
                return found
        if len(got) != len(want):
            return f"{path} has {len(got)} items, openapi.yaml {len(want)}"
        return None
    if got != want or type(got) is not type(want):
        return f"{path} is {got!r}, openapi.yaml has {want!r}"
    return None


def test_overlay_on_the_seed_gives_the_contract(overlay: Overlay) -> None:
    seed = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    difference = first_difference(apply_overlay(seed, overlay), contract)
    assert difference is None, f"{DRIFT}; first difference: {difference}"


def test_first_difference_names_the_path() -> None:
    want = {"a": {"b": [1, {"c-d": 2}]}}
    assert first_difference(want, want) is None
    assert first_difference({"a": {"b": [1, {"c-d": 3}]}}, want) == "$.a.b[1]['c-d'] is 3, openapi.yaml has 2"
    assert first_difference({"a": {"b": [1]}}, want) == "$.a.b has 1 items, openapi.yaml 2"
    assert first_difference({"a": {}}, want).startswith("$.a.b is missing")
    assert first_difference({"a": {"b": [1, {"c-d": 2}]}, "e": 0}, want).startswith("$.e is not in openapi.yaml")


def test_every_action_says_what_it_changes(overlay: Overlay) -> None:
    silent = [f"action {n} ({action.target})" for n, action in enumerate(overlay.actions, 1) if not action.description]
    assert not silent, f"{ERRATA_OVERLAY.name}: actions without a description: {', '.join(silent)}"


def _table_numbers() -> list[int]:
    return [int(n) for n in re.findall(r"^\| *(\d+) *\|", ERRATA_DOC.read_text(encoding="utf-8"), re.MULTILINE)]


def test_erratum_numbers_are_those_of_the_table(raw_overlay: dict[str, Any]) -> None:
    numbers = [action.get("x-erratum") for action in raw_overlay["actions"]]
    unnumbered = [n for n, number in enumerate(numbers, 1) if not isinstance(number, int)]
    assert not unnumbered, f"actions without an integer x-erratum: {unnumbered}"
    table = _table_numbers()
    assert table == list(range(1, len(table) + 1)), f"docs/errata.md's table numbers its rows {table}"
    assert sorted(set(numbers)) == table, f"the overlay covers errata {sorted(set(numbers))}, the table {table}"


def test_each_erratum_is_one_group_under_its_heading(raw_overlay: dict[str, Any]) -> None:
    groups = [action["x-erratum"] for action in raw_overlay["actions"]]
    in_order = [number for n, number in enumerate(groups) if n == 0 or groups[n - 1] != number]
    headings = re.findall(r"^ *# Erratum (\d+):", ERRATA_OVERLAY.read_text(encoding="utf-8"), re.MULTILINE)
    assert in_order == sorted(set(groups)), f"the actions of an erratum are not together, in order: {in_order}"
    assert [int(n) for n in headings] == in_order, f"'# Erratum N:' headings {headings}, x-erratum groups {in_order}"
