"""Witness instances: the concrete instances that show a defect of the document.

Built cheapest first: a minimal instance of a schema and a few hand-made variants of it
(:func:`candidates`, :func:`request_instances`), checked against the schema; only when
those decide nothing, a seeded, bounded hypothesis-jsonschema search (:func:`search`),
so the same document always gives the same witnesses. :func:`find_overlap` uses both to
show two branches that one instance satisfies, after trying to prove they cannot overlap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..core import schemas
from .document import declared_types, schema_properties, tag_values

SEARCH_EXAMPLES = 40  # per branch pair; the search only runs when nothing cheaper decided


def minimal_instance(schema: Any, depth: int = 0, full: int = 0) -> Any:
    """A small instance of a plain, inlined schema: required properties only, or all of them
    down to ``full`` levels of objects. It may be invalid (patterns, bounds); callers check."""
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return next((v for v in schema["enum"] if v is not None), schema["enum"][0])
    for keyword in ("allOf", "oneOf", "anyOf"):
        if isinstance(schema.get(keyword), list) and schema[keyword]:
            branches = [b for b in schema[keyword] if not (isinstance(b, dict) and b.get("type") == "null")]
            branch = branches[0] if branches else schema[keyword][0]
            if keyword == "allOf":
                merged: dict[str, Any] = {}
                for part in schema[keyword]:
                    if isinstance(part, dict):
                        merged = schemas.merge_schemas(merged, part)
                branch = merged
            rest = {k: v for k, v in schema.items() if k != keyword}
            return minimal_instance(schemas.merge_schemas(rest, branch) if rest else branch, depth + 1, full)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        properties = schema.get("properties") or {}
        names = list(properties) if full > 0 else [n for n in schema.get("required", []) if n in properties]
        # Arrays keep the level, so a list of choices shows a full choice; nested objects go minimal.
        out = {
            name: minimal_instance(
                properties[name], depth + 1, full if declared_types(properties[name]) == {"array"} else full - 1
            )
            for name in names
        }
        for name in schema.get("required", []):
            out.setdefault(name, None)
        return out
    if kind == "array":
        count = max(int(schema.get("minItems", 0)), 1 if full > 0 else 0)
        return [minimal_instance(schema.get("items"), depth + 1, full) for _ in range(count)]
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        if not isinstance(low, (int, float)):
            return 0
        value = low + 1 if "exclusiveMinimum" in schema and "minimum" not in schema else low
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    return None


def _tag_variants(schema: Any, base: Any) -> Iterator[Any]:
    """``base`` with each top-level enum/const property set to each of its values."""
    if not isinstance(schema, dict) or not isinstance(base, dict):
        return
    for name, prop in (schema.get("properties") or {}).items():
        values = tag_values(prop)
        for value in values or ():
            if base.get(name) != value:
                yield {**base, name: value}


def candidates(schema: Any) -> list[Any]:
    """Hand-built instances of a branch, most telling first, each valid under it."""
    minimal = minimal_instance(schema)
    found: list[Any] = []
    for instance in (minimal, *_tag_variants(schema, minimal), minimal_instance(schema, full=1)):
        if instance not in found and schemas.is_valid(schema, instance):
            found.append(instance)
    return found


def search(schema: Any, condition: Callable[[Any], bool], max_examples: int = SEARCH_EXAMPLES) -> list[Any]:
    """A seeded, bounded hypothesis-jsonschema search for an instance of ``schema`` meeting
    ``condition``: ``[instance]``, or ``[]`` when none turned up (which proves nothing)."""
    from hypothesis_jsonschema import from_schema

    return search_strategy(lambda: from_schema(schema), condition, max_examples)


def search_strategy(
    strategy: Callable[[], Any], condition: Callable[[Any], bool], max_examples: int = SEARCH_EXAMPLES
) -> list[Any]:
    """:func:`search` over the values of the strategy ``strategy()`` builds; the shrunk first
    value meeting ``condition``, as ``[value]``, or ``[]``. Drawn without Hypothesis's local
    constants, so the witnesses do not depend on which modules the process has loaded."""
    from hypothesis import HealthCheck, find, settings
    from hypothesis.errors import HypothesisException

    from ..determinism import without_local_constants

    config = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    try:
        with without_local_constants():
            return [find(strategy(), condition, settings=config)]
    except HypothesisException:
        return []
    except Exception:  # hypothesis-jsonschema refuses some schemas it cannot generate from
        return []


def property_values(schema: Any, depth: int = 0) -> list[Any]:
    """Small values of one property, one of each kind its schema allows: the minimal instance,
    each enum value, each oneOf/anyOf branch's own values, an object's candidates; for an array,
    one item of each kind, and all of an enum's values at once (``["text", "audio"]``)."""
    if not isinstance(schema, dict) or depth > 3:
        return []
    found = [minimal_instance(schema), *(tag_values(schema) or [])]
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        rest = {k: v for k, v in schema.items() if k != keyword}
        for branch in branches if isinstance(branches, list) else []:
            if isinstance(branch, dict):
                found.extend(property_values(schemas.merge_schemas(rest, branch) if rest else branch, depth + 1))
    kinds = declared_types(schema) or set()
    if "object" in kinds or "properties" in schema:
        found.extend(candidates(schema))
    if "array" in kinds and isinstance(schema.get("items"), dict):
        found.extend([value] for value in property_values(schema["items"], depth + 1))
        every = tag_values(schema["items"])
        if every:
            found.append([v for v in every if v is not None])
    if "boolean" in kinds:
        found.extend([True, False])
    return _distinct(value for value in found if schemas.is_valid(schema, value))


def request_instances(schema: Any) -> list[Any]:
    """Hand-built request bodies: the minimal and the fullest one, and each of them with one
    property set to each of its :func:`property_values`."""
    bases = _distinct([minimal_instance(schema), minimal_instance(schema, full=1)])
    found = list(bases)
    for base in bases:
        if isinstance(base, dict):
            for name, prop in schema_properties(schema).items():
                found.extend({**base, name: value} for value in property_values(prop))
    return _distinct(found)


def request_strategy(schema: Any) -> Any:
    """Request bodies for the refusal search. Each required property takes one of its
    :func:`property_values`, each optional one is drawn by hypothesis-jsonschema within small
    bounds: the budget goes to the options, where the rules that span fields live, and not to
    forty-message conversations. A body schema that is not a plain object is drawn whole."""
    from hypothesis import strategies as st
    from hypothesis_jsonschema import from_schema

    from ..strategies import bounded_schema

    props = schema_properties(schema)
    plain_object = declared_types(schema) == {"object"} and not any(
        k in schema for k in ("oneOf", "anyOf", "allOf", "not", "if", "$ref")
    )
    if not props or not plain_object:
        return from_schema(bounded_schema(schema, 2, 2))
    required = [name for name in schema.get("required", []) if name in props]
    pinned = {
        name: st.sampled_from(property_values(props[name]) or [minimal_instance(props[name])]) for name in required
    }
    drawn = {name: from_schema(bounded_schema(prop, 2, 2)) for name, prop in props.items() if name not in required}
    return st.fixed_dictionaries(pinned, optional=drawn)


def _distinct(values: Iterable[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values())


def provably_disjoint(a: Any, b: Any) -> bool:
    """True when no instance can be valid under both: different types, different
    enum/const values, or a property both require with disjoint enum/const values."""
    types_a, types_b = declared_types(a), declared_types(b)
    if types_a is not None and types_b is not None and not types_a & types_b:
        return True
    values_a, values_b = tag_values(a), tag_values(b)
    if values_a is not None and values_b is not None and not any(v in values_b for v in values_a):
        return True
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    shared = set(a.get("required", [])) & set(b.get("required", []))
    for name in shared:
        va = tag_values((a.get("properties") or {}).get(name))
        vb = tag_values((b.get("properties") or {}).get(name))
        if va is not None and vb is not None and not any(v in vb for v in va):
            return True
    return False


@dataclass(frozen=True)
class Overlap:
    first: int
    second: int
    witness: Any


def find_overlap(branches: list[Any], context: Any, prefer_full: bool = False) -> Overlap | None:
    """An instance valid under two branches (and under ``context``, the schema around them)."""
    if any(b is None for b in [*branches, context]):
        return None
    pairs = [
        (i, j)
        for i in range(len(branches))
        for j in range(len(branches))
        if i != j and not provably_disjoint(branches[i], branches[j])
    ]
    if prefer_full:  # a full instance of a later shape (a chunk) shows the ambiguity best
        pairs.reverse()
    if not pairs:
        return None

    def fits(instance: Any, j: int) -> bool:
        return schemas.is_valid(branches[j], instance) and schemas.is_valid(context, instance)

    for i, j in pairs:
        found = candidates(branches[i])
        if prefer_full:
            found.reverse()
        for instance in found:
            if fits(instance, j):
                return Overlap(min(i, j), max(i, j), instance)
    for i, j in pairs:
        for witness in search(branches[i], partial(fits, j=j)):
            return Overlap(min(i, j), max(i, j), witness)
    return None
