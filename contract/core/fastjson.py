"""Compact JSON as bytes, through orjson when it is installed and the standard library otherwise.

Both tools encode JSON on their hot paths (the mock for every reply, the checker
for every request). orjson does it several times faster, and for the values the
tools write (strings, integers, booleans, null, lists and objects with string
keys) its output is byte for byte the standard library's compact form with
``ensure_ascii`` off, so which of the two ran never shows on the wire. Anything
orjson declines (an integer beyond 64 bits, a key that is not a string) goes to
the standard library.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # no wheel for this platform: the standard library, slower
    orjson = None  # type: ignore[assignment]

AVAILABLE = orjson is not None


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
