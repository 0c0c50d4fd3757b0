"""JSON read as strict parsers read it: no ``NaN``, no ``Infinity``, no number too large for a float.

Python's ``json`` module takes all three (``1e999`` reads as ``inf``) and writes them back as ``NaN``
and ``Infinity``, which clients' parsers refuse. The fixture loader (a reply's content, tool-call
arguments) and the request-body reader both refuse them, each in its own words, so the refusal says
what was refused and leaves the wording to the caller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn


class NonFiniteNumber(ValueError):
    """A JSON text holds ``NaN`` or an infinity, or a number too large for a float (which reads as one)."""

    def __init__(self, text: str, *, constant: bool) -> None:
        super().__init__(f"{text} is not JSON" if constant else f"the number {text} is out of range")
        self.text = text  # as written: "NaN", "-Infinity", "1e999"
        self.constant = constant  # written as NaN or Infinity, not as a number out of range


def finite_float(text: str) -> float:
    """``parse_float`` for ``json.loads``: the number, unless it is too large for a float."""
    number = float(text)
    if not math.isfinite(number):
        raise NonFiniteNumber(text, constant=False)
    return number


def refuse_constant(text: str) -> NoReturn:
    """``parse_constant`` for ``json.loads``: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON."""
    raise NonFiniteNumber(text, constant=True)


def strict_json_loads(text: str, parse_int: Callable[[str], Any] | None = None) -> Any:
    """``json.loads`` that refuses NaN, Infinity and out-of-range numbers with :class:`NonFiniteNumber`."""
    return json.loads(text, parse_int=parse_int, parse_float=finite_float, parse_constant=refuse_constant)
