"""Build a small, realistic value that a JSON Schema accepts.

The fallback reply needs tool-call arguments and structured content that a
client's own validation takes, and that read like something a model would
write (``{"city": "Paris", "unit": "celsius"}``), not like fuzzing output.
So values are built by hand from the schema, preferring what the schema
suggests (``const``, ``default``, ``examples``, ``enum``) and what a property
name implies (:mod:`.named_values`), then checked with jsonschema. Only when that fails does
hypothesis-jsonschema search for any valid value, with a fixed seed so the
reply replays exactly. A schema that is invalid, points outside itself, or
that no value satisfies is reported as a :class:`SchemaProblem`.
"""

from __future__ import annotations

import json
import math
import re
import threading
import warnings
from collections.abc import Iterator
from functools import lru_cache
from random import Random
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

from .named_values import NO_HINTS, Hints, formatted_string, named_number, named_string, singular, words_of_name
from .schemas import is_number, merge_schemas, schema_types

__all__ = ["Hints", "SchemaProblem", "build_instance", "schema_problem", "words_of_name"]

MAX_DEPTH = 8  # nesting beyond this is almost always a recursive schema; stop adding optional parts
SEARCH_EXAMPLES = 150  # how many values hypothesis-jsonschema may try before the schema counts as unsatisfiable
_VARIED_SKIP = 10  # Hypothesis tries the simplest values first; past these its draws look random


class SchemaProblem(Exception):
    """The schema cannot give a value: it is not valid JSON Schema, refers outside itself, or nothing satisfies it."""


class SchemaTooLarge(SchemaProblem):
    """The schema asks for a value larger than the mock builds: refused at once, never searched for."""


# What one reply may hold: a tiny schema can ask for a billion items, and building (or searching for)
# that value would stall the server for minutes and take gigabytes.
MAX_ITEMS = 1_000  # minItems, minProperties, minContains
MAX_STRING = 100_000  # minLength
MAX_BUILD_UNITS = 100_000  # values built plus string characters, over the whole instance
_SIZE_KEYWORDS = {"minItems": MAX_ITEMS, "minProperties": MAX_ITEMS, "minContains": MAX_ITEMS, "minLength": MAX_STRING}


def size_problem(schema: Any) -> str | None:
    """Why a value of ``schema`` would be larger than the mock builds (a bound like minItems 1e9), or None.

    Minimums multiply down the tree (1,000 arrays of 1,000 items), so each node's minimum is weighed
    by those above it. ``$ref`` cycles are not followed here; the builder's own budget bounds those.
    """
    stack: list[tuple[Any, str, float]] = [(schema, "", 1.0)]
    while stack:
        node, where, weight = stack.pop()
        if isinstance(node, dict):
            below = weight
            for key, value in node.items():
                limit = _SIZE_KEYWORDS.get(key)
                if limit is None or not is_number(value):
                    continue
                if value > limit:
                    return (
                        f"{key} {value:g} at {where or '/'} asks for a value larger than the mock builds "
                        f"(at most {limit:,})"
                    )
                if weight * value > MAX_BUILD_UNITS:
                    return (
                        f"{key} {value:g} at {where or '/'}, inside other minimums, asks for a value larger "
                        f"than the mock builds (over {MAX_BUILD_UNITS:,} values and characters)"
                    )
                if key != "minLength":
                    below = max(below, weight * max(1.0, float(value)))
            for key, value in node.items():
                if key not in ("const", "enum", "default", "examples"):
                    stack.append((value, f"{where}/{key}", below))
        elif isinstance(node, list):
            stack.extend((item, f"{where}/{i}", weight) for i, item in enumerate(node))
    return None


class _CannotBuild(Exception):
    """The hand builder gave up on a node; the search takes over."""


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot be used as a JSON Schema here, or ``None`` when it can."""
    if not isinstance(schema, (dict, bool)):
        return f"a JSON Schema must be an object or a boolean, not {type(schema).__name__}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            validator_class.check_schema(schema)  # type: ignore[arg-type]  # a boolean is a schema too
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"{exc.message}" + (f" (at {where})" if where else "")
    except Exception as exc:  # a malformed $schema and the like: the library itself chokes
        return f"not a usable JSON Schema ({type(exc).__name__}: {exc})"
    for ref in _refs(schema):
        if not ref.startswith("#"):
            return f"$ref {ref!r} points outside the schema; only local references ('#/...') are supported"
        try:
            _resolver_for(schema).lookup(ref)
        except Unresolvable:
            return f"$ref {ref!r} resolves nowhere in the schema"
    return None


def build_instance(schema: Any, seed: int, hints: Hints = NO_HINTS, *, want_object: bool = False) -> Any:
    """A deterministic value valid against ``schema`` (an object when ``want_object``).

    Raises :class:`SchemaProblem` when the schema is unusable or unsatisfiable.
    """
    problem = schema_problem(schema)
    if problem:
        raise SchemaProblem(problem)
    too_large = size_problem(schema)
    if too_large:
        raise SchemaTooLarge(too_large)
    if want_object:
        # Added at the root, beside the schema's own keywords, so its local $refs still resolve.
        schema = (
            {"type": "object"}
            if schema is True
            else {**schema, "allOf": [*(schema.get("allOf") or []), {"type": "object"}]}
        )
    validator = _validator_for(schema)
    builder = _Builder(schema, Random(f"instance:{seed}"), hints, validator)
    try:
        value = builder.value(schema, _resolver_for(schema), "", 0)
        if validator.is_valid(value):
            return value
    except (_CannotBuild, Unresolvable, RecursionError, ValueError, TypeError, OverflowError, re.error):
        pass
    return _search(json.dumps(schema, sort_keys=True), seed)


# ---------------------------------------------------------------------------
# Schema plumbing


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for key, value in node.items():
            if key not in ("const", "enum", "default", "examples"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolver_for(schema: Any) -> Any:  # a referencing Resolver (the class is not exported)
    """Resolves the schema's own $refs; its registry is empty, so nothing is ever fetched."""
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    specification = specification_with(dialect, default=DRAFT202012) if isinstance(dialect, str) else DRAFT202012
    resource = specification.create_resource(schema)
    return Registry().resolver_with_root(resource)


def _validator_for(schema: Any) -> jsonschema.protocols.Validator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, registry=Registry(), format_checker=cls.FORMAT_CHECKER)


_search_lock = threading.Lock()  # Hypothesis keeps global state; one search at a time


@lru_cache(maxsize=256)
def _search(schema_json: str, seed: int, varied: bool = False) -> Any:
    """A valid value found by hypothesis-jsonschema with a fixed random source (so it replays).

    By default the plainest one (Hypothesis shrinks to short strings and zeros), which reads
    best for a whole schema. ``varied`` skips the first few valid values and does not shrink,
    so a single patterned string comes out like ``QKZ-8312`` rather than ``AAA-0000``.
    """
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import HypothesisException
    from hypothesis_jsonschema import from_schema

    schema = json.loads(schema_json)
    validator = _validator_for(schema)
    seen_valid = 0

    def wanted(value: Any) -> bool:
        nonlocal seen_valid
        if not validator.is_valid(value):
            return False
        seen_valid += 1
        return not varied or seen_valid > _VARIED_SKIP

    search_settings = settings(
        database=None,
        max_examples=SEARCH_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate,) if varied else (Phase.generate, Phase.shrink),
    )
    with _search_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return find(from_schema(schema, allow_x00=False), wanted, settings=search_settings, random=Random(seed))
        except HypothesisException:
            if not (varied and seen_valid):
                raise SchemaProblem("no value satisfies the schema") from None
        except Exception as exc:  # the generator's own limits (recursive $ref, odd keywords): same outcome
            raise SchemaProblem(f"no value satisfies the schema that could be found ({type(exc).__name__})") from None
    return _search(schema_json, seed)  # only a few values exist: take the plainest


class _Builder:
    """Walks a schema and builds one value, drawing every choice from one seeded RNG."""

    def __init__(self, root: Any, rng: Random, hints: Hints, validator: jsonschema.protocols.Validator) -> None:
        self.root = root
        self.rng = rng
        self.hints = hints
        self.validator = validator
        self.vary = 0  # raised while filling a uniqueItems array, so repeated builds differ
        self.budget = MAX_BUILD_UNITS

    def spend(self, units: int) -> None:
        """Count what the value grows by; nested minimums multiply, so the whole is bounded too."""
        self.budget -= units
        if self.budget < 0:
            raise SchemaTooLarge(
                f"the schema asks for a value larger than the mock builds (over "
                f"{MAX_BUILD_UNITS:,} values and characters in all)"
            )

    def fits(self, value: Any, schema: Any, resolver: Any) -> bool:
        try:
            return self.validator.evolve(schema=schema, _resolver=resolver).is_valid(value)
        except (Unresolvable, RecursionError, re.error, TypeError, ValueError):
            return False

    def value(self, schema: Any, resolver: Any, name: str, depth: int) -> Any:
        self.spend(1)
        if schema is True:
            schema = {}
        if not isinstance(schema, dict) or depth > MAX_DEPTH * 2:
            raise _CannotBuild
        if isinstance(schema.get("$ref"), str):
            resolved = resolver.lookup(schema["$ref"])
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            target = resolved.contents
            if siblings and isinstance(target, dict):
                target = merge_schemas(target, siblings)
            return self.value(target, resolved.resolver, name, depth + 1)
        if "const" in schema:
            return schema["const"]
        for candidate in self._suggested(schema):
            if self.fits(candidate, schema, resolver):
                return candidate
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                if part is False:
                    raise _CannotBuild
                if isinstance(part, dict) and isinstance(part.get("$ref"), str):
                    resolved = resolver.lookup(part["$ref"])
                    part = resolved.contents
                if isinstance(part, dict):
                    merged = merge_schemas(merged, part)
            return self.value(merged, resolver, name, depth + 1)
        for keyword in ("oneOf", "anyOf"):
            if isinstance(schema.get(keyword), list):
                return self._branch(schema, keyword, resolver, name, depth)
        return self._typed(schema, resolver, name, depth)

    def _suggested(self, schema: dict[str, Any]) -> list[Any]:
        """Values the schema itself proposes, most telling first."""
        out: list[Any] = []
        if "default" in schema:
            out.append(schema["default"])
        examples = schema.get("examples")
        if isinstance(examples, list) and examples:
            out.extend(self.rng.sample(examples, len(examples)))
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            non_null = [e for e in enum if e is not None]
            out.extend(self.rng.sample(non_null, len(non_null)) + [e for e in enum if e is None])
        return out

    def _branch(self, schema: dict[str, Any], keyword: str, resolver: Any, name: str, depth: int) -> Any:
        branches = list(schema[keyword])
        # Real values are rarely null: try the other branches first, in the order the author wrote them.
        branches.sort(key=lambda b: isinstance(b, dict) and (b.get("type") == "null" or b.get("const", 0) is None))
        base = {k: v for k, v in schema.items() if k != keyword}
        for branch in branches:
            if not isinstance(branch, (dict, bool)) or branch is False:
                continue
            candidate_schema = merge_schemas(base, branch) if isinstance(branch, dict) else base
            try:
                candidate = self.value(candidate_schema, resolver, name, depth + 1)
            except (_CannotBuild, Unresolvable):
                continue
            if self.fits(candidate, schema, resolver):
                return candidate
        raise _CannotBuild

    def _typed(self, schema: dict[str, Any], resolver: Any, name: str, depth: int) -> Any:
        for kind in self._type_order(schema):
            try:
                if kind == "object":
                    return self._object(schema, resolver, depth)
                if kind == "array":
                    return self._array(schema, resolver, name, depth)
                if kind == "string":
                    return self._string(schema, name)
                if kind in ("integer", "number"):
                    return self._number(schema, name, integer=kind == "integer")
                if kind == "boolean":
                    return self.rng.random() < 0.5
                if kind == "null":
                    return None
            except _CannotBuild:
                continue
        raise _CannotBuild

    def _type_order(self, schema: dict[str, Any]) -> list[str]:
        declared = schema_types(schema.get("type"))
        if declared:
            return [t for t in declared if t != "null"] + [t for t in declared if t == "null"]
        if any(
            k in schema
            for k in (
                "properties",
                "required",
                "additionalProperties",
                "minProperties",
                "patternProperties",
                "propertyNames",
            )
        ):
            return ["object"]
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")):
            return ["array"]
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
            return ["number"]
        return ["string", "integer", "boolean", "object", "array", "null"]

    # -- objects and arrays -------------------------------------------------

    def _object(self, schema: dict[str, Any], resolver: Any, depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            properties = {}
        required = (
            [r for r in schema.get("required", []) if isinstance(r, str)]
            if isinstance(schema.get("required"), list)
            else []
        )
        extra_schema = schema.get("additionalProperties", True)
        optional = [p for p in properties if p not in required]
        deep = depth >= MAX_DEPTH
        chosen = set(required) | {p for p in optional if not deep and self.rng.random() < 0.6}
        min_props = schema.get("minProperties", 0) if is_number(schema.get("minProperties")) else 0
        max_props = schema.get("maxProperties") if is_number(schema.get("maxProperties")) else None
        for prop in optional:
            if len(chosen) >= min_props:
                break
            chosen.add(prop)
        out: dict[str, Any] = {}
        for prop in [*properties, *[r for r in required if r not in properties]]:
            if prop not in chosen:
                continue
            sub = properties.get(prop, extra_schema if isinstance(extra_schema, dict) else {})
            if prop not in properties and extra_schema is False:
                raise _CannotBuild
            try:
                out[prop] = self.value(sub, resolver, prop, depth + 1)
            except (_CannotBuild, Unresolvable):
                if prop in required:
                    raise
        counter = 1
        while len(out) < min_props:
            if extra_schema is False:
                raise _CannotBuild
            key = f"extra_{counter}"
            counter += 1
            out[key] = self.value(extra_schema if isinstance(extra_schema, dict) else {}, resolver, key, depth + 1)
        if max_props is not None and len(out) > max_props:
            for prop in [p for p in list(out) if p not in required][: len(out) - int(max_props)]:
                del out[prop]
        return out

    def _array(self, schema: dict[str, Any], resolver: Any, name: str, depth: int) -> list[Any]:
        low = int(schema["minItems"]) if is_number(schema.get("minItems")) else 0
        high = int(schema["maxItems"]) if is_number(schema.get("maxItems")) else low + 3
        if low > high:
            raise _CannotBuild
        wanted = low if depth >= MAX_DEPTH else min(max(low, self.rng.randint(1, 3)), high)
        prefix = schema.get("prefixItems")
        if not isinstance(prefix, list):
            prefix = []
        items = schema.get("items", {})
        if isinstance(items, list):  # the older tuple form
            prefix, items = items, schema.get("additionalItems", {})
        element_name = singular(name)
        out: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < wanted:
            attempts += 1
            if attempts > wanted * 6 + 6:
                raise _CannotBuild
            index = len(out)
            sub = prefix[index] if index < len(prefix) else items
            if sub is False:
                break
            value = self.value(sub, resolver, element_name, depth + 1)
            key = json.dumps(value, sort_keys=True)
            if key in seen and schema.get("uniqueItems") is True:
                self.vary += 1
                continue
            if key in seen and attempts <= wanted * 2:  # repeats read oddly; redraw a couple of times
                continue
            seen.add(key)
            out.append(value)
        self.vary = 0
        return out

    # -- scalars -------------------------------------------------------------

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        text = formatted_string(fmt, self.rng) if isinstance(fmt, str) else None
        if text is None:
            text = self._named_string(name)
        low = int(schema["minLength"]) if is_number(schema.get("minLength")) else 0
        high = int(schema["maxLength"]) if is_number(schema.get("maxLength")) else None
        if high is not None and low > high:
            raise _CannotBuild
        if len(text) < low:
            self.spend(low)
            filler = " and more"
            text += (filler * (1 + (low - len(text)) // len(filler)))[: low - len(text)]
        if high is not None and len(text) > high:
            text = text[:high].rstrip() if len(text[:high].rstrip()) >= low else text[:high]
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not re.search(pattern, text):
            # A regex is better served by the search than by guessing; only this string is searched for.
            alone = {k: schema[k] for k in ("type", "pattern", "minLength", "maxLength", "format") if k in schema}
            try:
                found = _search(json.dumps(alone, sort_keys=True), self.rng.getrandbits(32), varied=True)
            except SchemaTooLarge:
                raise
            except SchemaProblem:
                raise _CannotBuild from None
            if not isinstance(found, str):
                raise _CannotBuild
            return found
        return text

    def _named_string(self, name: str) -> str:
        text = named_string(name, self.rng, self.hints)
        return f"{text} {self.vary + 1}" if self.vary else text

    def _number(self, schema: dict[str, Any], name: str, integer: bool) -> int | float:
        hinted = named_number(name, self.rng)
        base: float = (hinted if hinted is not None else self.rng.choice((3, 7, 12, 25, 42))) + self.vary
        low, low_open = self._bound(schema, "minimum", "exclusiveMinimum", lower=True)
        high, high_open = self._bound(schema, "maximum", "exclusiveMaximum", lower=False)
        step = schema.get("multipleOf") if is_number(schema.get("multipleOf")) and schema["multipleOf"] > 0 else None
        if integer:
            step = step if step is not None else 1
            if isinstance(step, float) and not step.is_integer():
                step = _lcm_with_one(step)
            base = round(base)
        if low is not None and high is not None and (low > high or (low == high and (low_open or high_open))):
            raise _CannotBuild
        candidates = [base]
        if low is not None:
            candidates.append(low + (step or 1) if low_open else low)
        if high is not None:
            candidates.append(high - (step or 1) if high_open else high)
        if low is not None and high is not None:
            candidates.append((low + high) / 2)
        for raw in candidates:
            value = self._snap(raw, step, low, high, low_open, high_open)
            if value is None:
                continue
            if integer or (isinstance(value, float) and value.is_integer() and hinted is None):
                if float(value).is_integer():
                    value = int(value)
                elif integer:
                    continue
            return value
        raise _CannotBuild

    @staticmethod
    def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, lower: bool) -> tuple[float | None, bool]:
        value, is_open = None, False
        if is_number(schema.get(inclusive)):
            value = schema[inclusive]
            if schema.get(exclusive) is True:  # draft 4: a boolean beside the bound
                is_open = True
        if is_number(schema.get(exclusive)):
            other = schema[exclusive]
            if value is None or (other >= value if lower else other <= value):
                value, is_open = other, True
        if value is not None and not math.isfinite(value):
            return None, False
        return value, is_open

    @staticmethod
    def _snap(
        raw: float, step: float | None, low: float | None, high: float | None, low_open: bool, high_open: bool
    ) -> float | None:
        value = raw
        if low is not None and (value < low or (low_open and value <= low)):
            value = low
        if high is not None and (value > high or (high_open and value >= high)):
            value = high
        if step:
            k = math.ceil(value / step) if low is not None and value <= low else round(value / step)
            value = k * step
            if isinstance(step, float):
                value = round(value, 10)
            for _ in range(3):
                if low is not None and (value < low or (low_open and value <= low)):
                    k += 1
                elif high is not None and (value > high or (high_open and value >= high)):
                    k -= 1
                else:
                    break
                value = round(k * step, 10) if isinstance(step, float) else k * step
        if low is not None and (value < low or (low_open and value <= low)):
            return None
        if high is not None and (value > high or (high_open and value >= high)):
            return None
        return value


def _lcm_with_one(step: float) -> float:
    """A multiple of ``step`` that is a whole number (an integer must also be a multiple of it)."""
    for k in range(1, 1001):
        if (step * k).is_integer():
            return step * k
    raise _CannotBuild
