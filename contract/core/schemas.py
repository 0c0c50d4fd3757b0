"""What the tools do with plain (inlined) JSON Schemas besides validating documents: merge two, ask
whether a value matches one, and read a keyword's value (the types it lists, whether a bound is a number).

The checker's mutations, the lint's witnesses and the mock's made-up values all ask both questions, and
each had its own answer: one merge let a later property replace an earlier one, another combined them;
one validity check compiled the schema once, another built a validator per question.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jsonschema

MAX_COMPILED = 4096  # schema objects whose compiled verdict is kept


def merge_schemas(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Both schemas' constraints in one (close enough for building; validation has the last word)."""
    out = dict(base)
    for key, value in extra.items():
        if key not in out:
            out[key] = value
        elif key == "properties" and isinstance(value, dict) and isinstance(out[key], dict):
            merged = dict(out[key])
            for name, sub in value.items():
                merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
            out[key] = merged
        elif key == "required" and isinstance(value, list) and isinstance(out[key], list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "allOf" and isinstance(value, list) and isinstance(out[key], list):
            out[key] = [*out[key], *value]
        elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties") and is_number(value):
            out[key] = max(out[key], value) if is_number(out[key]) else value
        elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties") and is_number(value):
            out[key] = min(out[key], value) if is_number(out[key]) else value
        elif key == "type":
            mine, theirs = schema_types(out[key]), schema_types(value)
            common = [t for t in mine if t in theirs]
            if "integer" in mine and "number" in theirs or "number" in mine and "integer" in theirs:
                common.append("integer")
            out[key] = list(dict.fromkeys(common)) or ["__none__"]
        else:
            out[key] = value
    return out


def schema_types(value: Any) -> list[str]:
    """The type names a ``type`` keyword lists (one name or a list of them); none for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str)]
    return []


def is_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number: a bound like ``minLength: true`` is not one, though Python counts it."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A JSON number that JSON can also write back: not NaN, not an infinity."""
    return is_number(value) and math.isfinite(value)


def is_valid(schema: Any, instance: Any) -> bool:
    """Whether ``instance`` matches ``schema`` (a plain, inlined one); False for a schema that is not one.

    Asked for every branch at every place of every draw, and for every witness the lint tries, so the
    verdict comes from jsonschema-rs, compiled once per schema object, and jsonschema answers only
    what it declines.
    """
    if not isinstance(schema, (dict, bool)):
        return False
    if isinstance(schema, dict):
        verdict = _compiled(schema)(instance)
        if verdict is not None:
            return verdict
    try:
        return bool(jsonschema.Draft202012Validator(schema).is_valid(instance))
    except jsonschema.exceptions.SchemaError:
        return False


# id -> (the schema, kept alive so the id stays its own; its compiled verdict, or None)
_compiled_verdicts: dict[int, tuple[Any, Callable[[Any], bool | None]]] = {}


def _compiled(schema: dict[str, Any]) -> Callable[[Any], bool | None]:
    """A compiled (jsonschema-rs) verdict for a schema, built once per schema object.

    The branches of the request schema are the same objects at every draw, so they are looked up by
    identity. ``None`` from the verdict means "ask jsonschema": the library is missing, or it declines
    the schema or the value.
    """
    held = _compiled_verdicts.get(id(schema))
    if held is not None and held[0] is schema:
        return held[1]
    verdict = _compiled_verdict(schema)
    if len(_compiled_verdicts) >= MAX_COMPILED:
        _compiled_verdicts.clear()
    _compiled_verdicts[id(schema)] = (schema, verdict)
    return verdict


def _compiled_verdict(schema: dict[str, Any]) -> Callable[[Any], bool | None]:
    try:
        import jsonschema_rs

        compiled = jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
    except (ImportError, ValueError, TypeError):
        return lambda instance: None

    def verdict(instance: Any) -> bool | None:
        try:
            return bool(compiled.is_valid(instance))
        except (ValueError, TypeError, OverflowError):
            return None

    return verdict
