"""Defects of the contract document itself, each shown with a witness instance.

A validator that says "no" to a correct server is worse than none: the user
blames the server. So before the document is used to judge anyone, this module
looks for places where it contradicts itself (``oneOf`` branches that overlap,
enums no instance can meet, references to nowhere) or where no real reply can
validate (a streamed reply with no ``text/event-stream``, fields real servers
send as ``null``). Where a defect is about instances, the finding carries one
concrete instance that shows it, so a reader can check the claim by hand.

First of all, the document must be an OpenAPI document at all: the standard
checker, openapi-spec-validator, runs before the rules (``lint_structure``).

Overlaps are searched for in three steps, cheapest first: a proof that two
branches are disjoint (different types, or a required tag property with
disjoint values); then a few hand-built instances of each branch (its minimal
instance, one per tag value, a fuller one); then a seeded, bounded
hypothesis-jsonschema search. Refusals of schema-valid requests that the
document does not list (``lint_refusals``) are looked for the same way, over
request bodies. The same document always gives the same findings and witnesses.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, Literal, TextIO

from ..core import pointers, schemas
from ..core.profiles import Profile
from ..core.spec import (
    SCHEMA_KEYWORDS,
    SCHEMA_LIST_KEYWORDS,
    SCHEMA_MAP_KEYWORDS,
    MediaSchema,
    Operation,
    Spec,
    SpecError,
    convert_schema,
    load_spec,
    pointer_join,
)
from ..core.validate import JSON, ContractValidator, pick_media
from .refusals import (
    RefusalKey,
    RefusalProbe,
    Refused,
    Refuser,
    RefuserFailure,
    documented_refusals,
    named_refusers,
)
from .structure import StructureUnchecked, structure_problems

Level = Literal["error", "warning"]
SEARCH_EXAMPLES = 40  # per branch pair; the search only runs when nothing cheaper decided
SEARCH_REQUESTS = 20  # request bodies drawn per search for refusals, after the hand-built ones
SEARCH_ROUNDS = 4  # searches per operation: each looks for a refusal the earlier ones did not find

# Fields that OpenAI-compatible servers send as null in ordinary traffic. A name list
# is a heuristic, stated as one: it is why the rule looks only where these fields live.
NULL_IN_RESPONSES = ("finish_reason", "content", "refusal")  # any object in a reply
NULL_IN_CHUNKS = ("usage",)  # every streamed chunk but the usage chunk
NULL_IN_TOOL_TURNS = ("content",)  # a message that can carry tool_calls


@dataclass(frozen=True)
class Finding:
    """One defect of the document: where it is, what is wrong, and an instance that shows it."""

    level: Level
    rule: str
    location: str  # JSON pointer into the document as written
    message: str
    witness: Any = None

    def __str__(self) -> str:
        line = f"{self.level}: {self.rule} at {self.location}: {self.message}"
        if self.witness is not None:
            line += f"; witness: {compact_json(self.witness)}"
        return line


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- entry points ---------------------------------------------------------------


def lint_spec(spec: Spec, refusers: Mapping[str, Refuser] | Iterable[Refuser] | None = None) -> list[Finding]:
    """Every finding of every rule, errors first, then by location.

    ``refusers`` are the request checks rule undocumented-refusal asks (by name, or named after
    their functions); ``None`` means those installed under the entry-point group
    ``chatstream_testkit.request_refusers``, and an empty collection turns the rule off.
    """
    context = _LintContext(spec, named_refusers(refusers))
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(context))
    return sorted(findings, key=lambda f: (f.level != "error", f.location, f.rule))


def lint_main(spec_path: str | None, out: TextIO, profile: Profile | None = None) -> int:
    """``contract-check --lint``: 0 no error-level finding, 1 some, 2 the document cannot be read.

    Under a profile other than the default, the summary line names it: the findings are the dialect's.
    """
    try:
        spec = load_spec(spec_path, profile)
        findings = lint_spec(spec)
    except SpecError as exc:
        sys.stderr.write(f"contract-check: error: {exc}\n")
        return 2
    for finding in findings:
        out.write(f"{finding}\n")
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    dialect = f" (profile {spec.profile.label})" if spec.profile.options() else ""
    out.write(
        f"{spec.source}{dialect}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}\n"
    )
    return 1 if errors else 0


# -- walking the document as written --------------------------------------------


class _LintContext:
    """The loaded document plus the walks and validators every rule shares."""

    def __init__(self, spec: Spec, refusers: Mapping[str, Refuser] | None = None) -> None:
        self.spec = spec
        self.raw = spec.raw
        self.legacy = spec.version.startswith("3.0")
        self.refusers = dict(refusers or {})
        self._validator: ContractValidator | None = None

    @property
    def validator(self) -> ContractValidator:
        if self._validator is None:
            self._validator = ContractValidator(self.spec)
        return self._validator

    def schema_roots(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(pointer, schema) for each component schema and each schema under paths/components."""
        components = self.raw.get("components")
        schemas = components.get("schemas") if isinstance(components, dict) else None
        if isinstance(schemas, dict):
            for name, schema in schemas.items():
                if isinstance(schema, dict):
                    yield pointer_join("#/components/schemas", name), schema
        for key in ("paths", "webhooks", "components"):
            node = self.raw.get(key)
            if isinstance(node, dict):
                yield from _media_schemas(node, f"#/{key}", skip_schemas=key == "components")

    def schema_nodes(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every schema and sub-schema of the document, with its pointer."""
        for pointer, schema in self.schema_roots():
            yield from _subschemas(schema, pointer)

    def plain(self, schema: Any) -> Any:
        """A written schema as plain JSON Schema with every $ref inlined; ``None`` when a
        $ref in it resolves nowhere (rule dangling-ref reports that, the others skip it)."""
        try:
            return self.spec.inline(convert_schema(schema, self.legacy))
        except SpecError:
            return None

    def follow(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow $ref chains in the document as written (cycles and dangling refs stop it)."""
        return pointers.follow_refs(node, pointer, lambda target: pointers.lookup(self.raw, target))

    def operations(self) -> Iterator[tuple[str, dict[str, Any]]]:
        paths = self.raw.get("paths")
        if not isinstance(paths, dict):
            return
        for path, item in paths.items():
            if not isinstance(item, dict):
                continue
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                if isinstance(item.get(method), dict):
                    yield pointer_join("#/paths", path, method), item[method]

    def responses(self, op: dict[str, Any], op_pointer: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(status, pointer, response) with response references followed."""
        for status, response in (op.get("responses") or {}).items():
            node, pointer = self.follow(response, pointer_join(op_pointer, "responses", status))
            if isinstance(node, dict):
                yield str(status), pointer, node


def _media_schemas(node: Any, pointer: str, skip_schemas: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if skip_schemas and key == "schemas":
                continue
            child = pointer_join(pointer, key)
            if key in ("schema", "itemSchema") and isinstance(value, dict):
                yield child, value
            elif key not in ("example", "examples") and isinstance(value, (dict, list)):
                yield from _media_schemas(value, child)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _media_schemas(item, pointer_join(pointer, index))


def _subschemas(schema: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for key, value in schema.items():
        if key in SCHEMA_KEYWORDS:
            yield from _subschemas(value, pointer_join(pointer, key))
        elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            for index, item in enumerate(value):
                yield from _subschemas(item, pointer_join(pointer, key, index))
        elif key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for name, item in value.items():
                yield from _subschemas(item, pointer_join(pointer, key, name))


def _refs(node: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer of the holder, target) for every $ref under ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield pointer, node["$ref"]
        for key, value in node.items():
            if key not in ("example", "examples", "$ref"):
                yield from _refs(value, pointer_join(pointer, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _refs(item, pointer_join(pointer, index))


def _properties(schema: Any) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _schema_name(branch: Any, index: int) -> str:
    if isinstance(branch, dict) and isinstance(branch.get("$ref"), str):
        return branch["$ref"].rsplit("/", 1)[-1]
    return f"branch #{index}"


# -- instances --------------------------------------------------------------------


def build_instance(schema: Any, depth: int = 0, full: int = 0) -> Any:
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
            return build_instance(schemas.merge_schemas(rest, branch) if rest else branch, depth + 1, full)
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
            name: build_instance(
                properties[name], depth + 1, full if _types(properties[name]) == {"array"} else full - 1
            )
            for name in names
        }
        for name in schema.get("required", []):
            out.setdefault(name, None)
        return out
    if kind == "array":
        count = max(int(schema.get("minItems", 0)), 1 if full > 0 else 0)
        return [build_instance(schema.get("items"), depth + 1, full) for _ in range(count)]
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
        values = _tag_values(prop)
        for value in values or ():
            if base.get(name) != value:
                yield {**base, name: value}


def _tag_values(schema: Any) -> list[Any] | None:
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return [schema["const"]]
    if isinstance(schema.get("enum"), list):
        return list(schema["enum"])
    return None


def candidates(schema: Any) -> list[Any]:
    """Hand-built instances of a branch, most telling first, each valid under it."""
    minimal = build_instance(schema)
    found: list[Any] = []
    for instance in (minimal, *_tag_variants(schema, minimal), build_instance(schema, full=1)):
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
    found = [build_instance(schema), *(_tag_values(schema) or [])]
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        rest = {k: v for k, v in schema.items() if k != keyword}
        for branch in branches if isinstance(branches, list) else []:
            if isinstance(branch, dict):
                found.extend(property_values(schemas.merge_schemas(rest, branch) if rest else branch, depth + 1))
    kinds = _types(schema) or set()
    if "object" in kinds or "properties" in schema:
        found.extend(candidates(schema))
    if "array" in kinds and isinstance(schema.get("items"), dict):
        found.extend([value] for value in property_values(schema["items"], depth + 1))
        every = _tag_values(schema["items"])
        if every:
            found.append([v for v in every if v is not None])
    if "boolean" in kinds:
        found.extend([True, False])
    return _distinct(value for value in found if schemas.is_valid(schema, value))


def request_instances(schema: Any) -> list[Any]:
    """Hand-built request bodies: the minimal and the fullest one, and each of them with one
    property set to each of its :func:`property_values`."""
    bases = _distinct([build_instance(schema), build_instance(schema, full=1)])
    found = list(bases)
    for base in bases:
        if isinstance(base, dict):
            for name, prop in _properties(schema).items():
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

    props = _properties(schema)
    plain_object = _types(schema) == {"object"} and not any(
        k in schema for k in ("oneOf", "anyOf", "allOf", "not", "if", "$ref")
    )
    if not props or not plain_object:
        return from_schema(bounded_schema(schema, 2, 2))
    required = [name for name in schema.get("required", []) if name in props]
    pinned = {name: st.sampled_from(property_values(props[name]) or [build_instance(props[name])]) for name in required}
    drawn = {name: from_schema(bounded_schema(prop, 2, 2)) for name, prop in props.items() if name not in required}
    return st.fixed_dictionaries(pinned, optional=drawn)


def _distinct(values: Iterable[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values())


def _size(value: Any) -> tuple[int, str]:
    text = compact_json(value)
    return len(text), text


def _types(schema: Any) -> set[str] | None:
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, str):
        kinds = {kind}
    elif isinstance(kind, list):
        kinds = set(kind)
    else:
        return None
    if "number" in kinds:
        kinds.add("integer")
    return kinds


def provably_disjoint(a: Any, b: Any) -> bool:
    """True when no instance can be valid under both: different types, different
    enum/const values, or a property both require with disjoint enum/const values."""
    types_a, types_b = _types(a), _types(b)
    if types_a is not None and types_b is not None and not types_a & types_b:
        return True
    values_a, values_b = _tag_values(a), _tag_values(b)
    if values_a is not None and values_b is not None and not any(v in values_b for v in values_a):
        return True
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    shared = set(a.get("required", [])) & set(b.get("required", []))
    for name in shared:
        va = _tag_values((a.get("properties") or {}).get(name))
        vb = _tag_values((b.get("properties") or {}).get(name))
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


# -- rules --------------------------------------------------------------------------


def rule_openapi_structure(ctx: _LintContext) -> Iterator[Finding]:
    """What the OpenAPI specification forbids, found by openapi-spec-validator."""
    try:
        problems = structure_problems(ctx.raw, ctx.spec.version)
    except StructureUnchecked as exc:
        yield Finding("warning", "openapi-structure", "#", f"structure not checked: {exc}")
        return
    for problem in problems:
        yield Finding("error", "openapi-structure", _written_pointer(ctx.raw, problem.path), problem.message)


def _written_pointer(document: Any, path: tuple[Any, ...]) -> str:
    """The pointer of a path that may pass through ``$ref`` jumps, as the document writes it."""
    pointer, node = "#", document
    for part in path:
        while isinstance(node, dict) and str(part) not in map(str, node) and isinstance(node.get("$ref"), str):
            try:
                node, pointer = pointers.lookup(document, node["$ref"]), node["$ref"]
            except LookupError:
                break
        if isinstance(node, dict):
            node = next((value for key, value in node.items() if str(key) == str(part)), None)
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            node = None
        pointer = pointer_join(pointer, part)
    return pointer


def rule_oneof_overlap(ctx: _LintContext) -> Iterator[Finding]:
    """``oneOf`` means exactly one: an instance valid under two branches is rejected by all."""
    for pointer, node in ctx.schema_nodes():
        branches = node.get("oneOf")
        if not isinstance(branches, list) or len(branches) < 2:
            continue
        plain = [ctx.plain(b) for b in branches]
        around = ctx.plain({k: v for k, v in node.items() if k not in ("oneOf", "nullable")})
        overlap = find_overlap(plain, around)
        if overlap is not None:
            a, b = (_schema_name(branches[k], k) for k in (overlap.first, overlap.second))
            yield Finding(
                "error",
                "oneof-overlap",
                pointer_join(pointer, "oneOf"),
                f"the witness is valid under both {a} and {b}, so oneOf rejects it (exactly one branch may match)",
                overlap.witness,
            )


def rule_ambiguous_response(ctx: _LintContext) -> Iterator[Finding]:
    """A reply that fits several documented shapes cannot be checked or parsed by shape."""
    for op_pointer, op in ctx.operations():
        for status, response_pointer, response in ctx.responses(op, op_pointer):
            for media_type, entry in (response.get("content") or {}).items():
                if not isinstance(entry, dict) or not isinstance(entry.get("schema"), dict):
                    continue
                schema, _ = ctx.follow(entry["schema"], pointer_join(response_pointer, "content", media_type, "schema"))
                for keyword in ("oneOf", "anyOf"):
                    branches = schema.get(keyword) if isinstance(schema, dict) else None
                    if not isinstance(branches, list) or len(branches) < 2:
                        continue
                    around = ctx.plain({k: v for k, v in schema.items() if k not in (keyword, "nullable")})
                    overlap = find_overlap([ctx.plain(b) for b in branches], around, prefer_full=True)
                    if overlap is None:
                        continue
                    a, b = (_schema_name(branches[k], k) for k in (overlap.first, overlap.second))
                    yield Finding(
                        "error",
                        "ambiguous-response",
                        pointer_join(response_pointer, "content", media_type),
                        f"status {status} {media_type} has shapes ({keyword}) that nothing tells apart: "
                        f"the witness is both a {a} and a {b}; give each shape its own media type "
                        "or a required property with distinct values",
                        overlap.witness,
                    )


def rule_unsatisfiable(ctx: _LintContext) -> Iterator[Finding]:
    """Enums and ``required`` that no instance can meet, and tags that contradict their names."""
    for pointer, node in ctx.schema_nodes():
        enum = node.get("enum")
        if isinstance(enum, list):
            if not enum:
                yield Finding(
                    "error", "unsatisfiable", pointer_join(pointer, "enum"), "empty enum: no value is allowed"
                )
            elif "type" in node:
                nullable = {"nullable": True} if node.get("nullable") else {}
                plain_type = convert_schema({"type": node["type"], **nullable}, ctx.legacy)
                dead = [v for v in enum if not schemas.is_valid(plain_type, v)]
                if dead:
                    level: Level = "error" if len(dead) == len(enum) else "warning"
                    yield Finding(
                        level,
                        "unsatisfiable",
                        pointer_join(pointer, "enum"),
                        f"enum values {compact_json(dead)} contradict type {compact_json(node['type'])}",
                        dead[0],
                    )
        required = node.get("required")
        properties = _properties(node)
        if isinstance(required, list):
            closed = node.get("additionalProperties") is False and not node.get("patternProperties")
            for name in required:
                schema = properties.get(name)
                if schema is False or (isinstance(schema, dict) and schema.get("not") == {}):
                    why = "its schema accepts nothing"
                elif closed and name not in properties:
                    why = "additionalProperties is false and it is not among the properties"
                else:
                    continue
                yield Finding(
                    "error",
                    "unsatisfiable",
                    pointer_join(pointer, "required"),
                    f"property {name!r} is required but {why}",
                )
    yield from _misnamed_tags(ctx)


def _misnamed_tags(ctx: _LintContext) -> Iterator[Finding]:
    """A oneOf of named schemas tagged by one property (``role``, ``type``): when every other
    branch's tag value is its name (SystemMessage -> system) and one branch's is not, the value
    its name implies matches no branch at all."""
    for pointer, node in ctx.schema_nodes():
        branches = node.get("oneOf")
        if not isinstance(branches, list) or len(branches) < 2:
            continue
        names = [_schema_name(b, i) for i, b in enumerate(branches)]
        if any(name.startswith("branch #") for name in names):
            continue
        stems = _name_stems(names)
        if stems is None:
            continue
        targets = [ctx.follow(b, pointer) for b in branches]
        tag = _shared_tag(targets)
        if tag is None:
            continue
        values = [_tag_values((t[0].get("properties") or {}).get(tag)) or [] for t in targets]
        # ``image_url`` and ``input_audio`` say ImageContent and AudioContent as well as ``image`` would.
        named_right = [
            any(stem in str(v).lower().split("_") for v in vals) for stem, vals in zip(stems, values, strict=True)
        ]
        if sum(named_right) < 2 or all(named_right):
            continue
        whole = ctx.plain(node)
        if whole is None:
            continue
        for index, ok in enumerate(named_right):
            if ok:
                continue
            base = build_instance(ctx.plain(branches[index]))
            if not isinstance(base, dict):
                continue
            witness = {**base, tag: stems[index]}
            if schemas.is_valid(whole, witness):
                continue
            branch_pointer = targets[index][1]
            yield Finding(
                "error",
                "unsatisfiable",
                pointer_join(branch_pointer, "properties", tag, "enum"),
                f"{names[index]} has {tag} {compact_json(values[index])}, not {stems[index]!r} as its "
                f"name says, so an instance with {tag} {stems[index]!r} (the witness) matches no branch "
                f"of the oneOf at {pointer_join(pointer, 'oneOf')}",
                witness,
            )


def _name_stems(names: list[str]) -> list[str] | None:
    """``SystemMessage, UserMessage`` -> ``system, user`` (the words before a shared suffix)."""
    words = [re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name) for name in names]
    if any(len(w) < 2 for w in words):
        return None
    suffix = words[0][-1]
    if any(w[-1] != suffix for w in words):
        return None
    return ["_".join(w[:-1]).lower() for w in words]


def _shared_tag(targets: list[tuple[Any, str]]) -> str | None:
    """A property every branch requires and pins to enum/const values."""
    common: set[str] | None = None
    for schema, _ in targets:
        if not isinstance(schema, dict):
            return None
        props = schema.get("properties") or {}
        tagged = {n for n in schema.get("required", []) if _tag_values(props.get(n)) is not None}
        common = tagged if common is None else common & tagged
    return sorted(common)[0] if common else None


def rule_dangling_ref(ctx: _LintContext) -> Iterator[Finding]:
    for holder, target in _refs(ctx.raw, "#"):
        location = pointer_join(holder, "$ref")
        if not target.startswith("#"):
            yield Finding("error", "dangling-ref", location, f"$ref {target!r} points outside the document")
            continue
        try:
            pointers.lookup(ctx.raw, target)
        except LookupError:
            yield Finding("error", "dangling-ref", location, f"$ref {target!r} resolves nowhere")


def rule_unused_schema(ctx: _LintContext) -> Iterator[Finding]:
    """A component schema no operation reaches (directly or through other schemas)."""
    components = ctx.raw.get("components")
    schemas = components.get("schemas") if isinstance(components, dict) else None
    if not isinstance(schemas, dict):
        return
    outside = {k: v for k, v in ctx.raw.items() if k != "components"}
    if isinstance(components, dict):
        outside["components"] = {k: v for k, v in components.items() if k != "schemas"}
    todo = [target for _, target in _refs(outside, "#")]
    reached: set[str] = set()
    while todo:
        target = todo.pop()
        if target in reached:
            continue
        reached.add(target)
        try:
            node = pointers.lookup(ctx.raw, target)
        except LookupError:
            continue
        todo.extend(t for _, t in _refs(node, target))
    for name in schemas:
        pointer = pointer_join("#/components/schemas", name)
        if not any(t == pointer or t.startswith(pointer + "/") for t in reached):
            yield Finding("warning", "unused-schema", pointer, f"schema {name!r} is never used by an operation")


def rule_single_tool_call(ctx: _LintContext) -> Iterator[Finding]:
    """``tool_calls`` as one object: a turn with parallel calls cannot validate."""
    for pointer, node in ctx.schema_nodes():
        prop = _properties(node).get("tool_calls")
        if not isinstance(prop, dict):
            continue
        kinds = _types(ctx.follow(prop, pointer)[0]) or set()
        if "object" not in kinds or "array" in kinds:
            continue
        call = build_instance(ctx.plain(prop), full=2)
        calls = [{**call, "id": f"call_{n}"} if isinstance(call, dict) and "id" in call else call for n in (1, 2)]
        yield Finding(
            "error",
            "single-tool-call",
            pointer_join(pointer, "properties", "tool_calls"),
            "tool_calls is one object, so a turn with parallel tool calls (the witness) cannot "
            "validate; make it an array of tool calls",
            calls,
        )


def rule_null_forbidden(ctx: _LintContext) -> Iterator[Finding]:
    """Fields real servers send as null, typed so that null is refused.

    Error, not warning: every streamed chunk but the last has ``finish_reason: null``, so
    with such a type no real stream validates. Which fields: a stated list of names known
    to be null in OpenAI-compatible traffic, looked for only where they occur there.
    """
    seen: set[str] = set()
    for pointer, schema, where in _reached_objects(ctx):
        props = _properties(schema)
        names: list[str] = []
        if where in ("response", "chunk"):
            names.extend(NULL_IN_RESPONSES)
        if where == "chunk":
            names.extend(NULL_IN_CHUNKS)
        if "tool_calls" in props:
            names.extend(NULL_IN_TOOL_TURNS)
        for name in dict.fromkeys(names):
            if name not in props:
                continue
            location = pointer_join(pointer, "properties", name)
            plain = ctx.plain(props[name])
            if location in seen or plain is None or schemas.is_valid(plain, None):
                continue
            seen.add(location)
            base = build_instance(ctx.plain(schema))
            witness = {**(base if isinstance(base, dict) else {}), name: None}
            yield Finding(
                "error",
                "null-forbidden",
                location,
                f"{name} cannot be null, but real servers send null there; mark it nullable",
                witness,
            )


def _reached_objects(ctx: _LintContext) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(pointer, schema, where) for each schema reached from a request or response body;
    ``where`` is request, response or chunk (a streamed item, or a schema named ``...Chunk``)."""
    starts: list[tuple[str, Any, str]] = []
    for op_pointer, op in ctx.operations():
        body, body_pointer = ctx.follow(op.get("requestBody"), pointer_join(op_pointer, "requestBody"))
        if isinstance(body, dict):
            for media, entry in (body.get("content") or {}).items():
                if isinstance(entry, dict) and isinstance(entry.get("schema"), dict):
                    starts.append((pointer_join(body_pointer, "content", media, "schema"), entry["schema"], "request"))
        for _, response_pointer, response in ctx.responses(op, op_pointer):
            for media, entry in (response.get("content") or {}).items():
                if not isinstance(entry, dict):
                    continue
                where = "chunk" if media.lower().startswith("text/event-stream") else "response"
                for key in ("schema", "itemSchema"):
                    if isinstance(entry.get(key), dict):
                        starts.append((pointer_join(response_pointer, "content", media, key), entry[key], where))
    visited: set[tuple[str, str]] = set()
    while starts:
        pointer, node, where = starts.pop(0)
        for sub_pointer, sub in _subschemas(node, pointer):
            ref = sub.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                try:
                    target = pointers.lookup(ctx.raw, ref)
                except LookupError:
                    continue
                target_where = "chunk" if "chunk" in ref.rsplit("/", 1)[-1].lower() and where != "request" else where
                if (ref, target_where) not in visited:
                    visited.add((ref, target_where))
                    starts.append((ref, target, target_where))
                continue
            yield sub_pointer, sub, where


def rule_stream_not_documented(ctx: _LintContext) -> Iterator[Finding]:
    """A request can ask for a stream, but no reply documents one: no streamed reply validates."""
    for op_pointer, op in ctx.operations():
        body, body_pointer = ctx.follow(op.get("requestBody"), pointer_join(op_pointer, "requestBody"))
        request_schema = None
        streamable = op.get("x-stream") is True
        if isinstance(body, dict):
            for entry in (body.get("content") or {}).values():
                if isinstance(entry, dict) and isinstance(entry.get("schema"), dict):
                    request_schema = ctx.plain(entry["schema"])
                    stream = _properties(request_schema).get("stream")
                    if isinstance(stream, dict) and "boolean" in (_types(stream) or set()):
                        streamable = True
        if not streamable:
            continue
        streams = [
            status
            for status, _, response in ctx.responses(op, op_pointer)
            if status.startswith("2")
            and any(m.lower().startswith("text/event-stream") for m in (response.get("content") or {}))
        ]
        if streams:
            continue
        witness = build_instance(request_schema) if request_schema is not None else None
        if isinstance(witness, dict):
            witness["stream"] = True
        yield Finding(
            "error",
            "stream-not-documented",
            pointer_join(op_pointer, "responses"),
            "the request can ask for a stream (stream / x-stream), but no 2xx response documents "
            "text/event-stream, so no streamed reply can validate",
            witness,
        )


def rule_no_error_responses(ctx: _LintContext) -> Iterator[Finding]:
    """No 4xx/5xx documented: every error reply, and every test of bad input, fails as undocumented.
    An error, not a warning, because real servers do answer 400, 401, 429 and 5xx."""
    for op_pointer, op in ctx.operations():
        statuses = [str(s) for s in (op.get("responses") or {})]
        if any(s[:1] in ("4", "5") or s == "default" for s in statuses):
            continue
        witness = {
            "status": 400,
            "body": {
                "error": {
                    "message": "messages is required",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": None,
                }
            },
        }
        yield Finding(
            "error",
            "no-error-responses",
            pointer_join(op_pointer, "responses"),
            f"only {', '.join(statuses) or 'no'} response(s) documented; an error reply such as "
            "the witness cannot be checked",
            witness,
        )


def rule_undocumented_refusal(ctx: _LintContext) -> Iterator[Finding]:
    """A schema-valid request that a server refuses for a reason the document does not list.

    Warning: the document is not wrong, only silent, but whoever trusts it sees "valid request
    refused". Reported at the operation's 400 response, where ``x-refusals`` belongs (or at the
    request body schema when there is no 400), once per (code, param) with the smallest witness.
    """
    if not ctx.refusers:
        return
    reported: set[tuple[str, RefusalKey]] = set()
    for op in ctx.spec.operations:
        media = pick_media(op.request_body, JSON)
        schema = ctx.plain(media.schema) if media is not None else None
        if media is None or schema is None:
            continue
        bad_request = next(
            (
                (pointer, response)
                for status, pointer, response in ctx.responses(pointers.lookup(ctx.raw, op.pointer), op.pointer)
                if status == "400"
            ),
            None,
        )
        location = bad_request[0] if bad_request else media.pointer
        probe = RefusalProbe(ctx.refusers, documented_refusals(bad_request[1]) if bad_request else set())

        def valid(body: Any, op: Operation = op, media: MediaSchema = media) -> bool:
            return (
                isinstance(body, dict)
                and ctx.validator.validate_request(body, op.path, op.method, media.media_type) == []
            )

        found, failures = _asked(schema, valid, probe)
        for key in sorted(found, key=lambda k: (str(k[0]), str(k[1]))):
            if (location, key) not in reported:
                reported.add((location, key))
                refused, body = found[key]
                yield Finding(
                    "warning",
                    "undocumented-refusal",
                    location,
                    _refusal_message(refused, bad_request is not None),
                    body,
                )
        for failure in failures:
            yield Finding(
                "warning",
                "undocumented-refusal",
                location,
                f"refuser {failure.refuser!r} failed on the witness ({failure.reason}); its refusals were not checked",
                failure.body,
            )


_Found = dict[RefusalKey, tuple[Refused, Any]]
# What the refusers said about each request schema, kept for the process: the runner and the pytest
# plugin lint the same document on every run, and the answer is the same each time (a seeded search).
_ASKED: dict[Any, tuple[_Found, list[RefuserFailure]]] = {}
_ASKED_MAX = 32


def _asked(schema: Any, valid: Callable[[Any], bool], probe: RefusalProbe) -> tuple[_Found, list[RefuserFailure]]:
    """:func:`_refusals` and the refusers' failures, from the cache when the same refusers were
    asked about the same schema with the same documented refusals."""
    key = (json.dumps(schema, sort_keys=True), frozenset(probe.documented), tuple(probe.refusers.items()))
    try:
        cached = _ASKED.get(key)
    except TypeError:  # a refuser that cannot be hashed: ask every time
        return _refusals(schema, valid, probe), probe.failures
    if cached is None:
        if len(_ASKED) >= _ASKED_MAX:
            _ASKED.clear()
        cached = _ASKED[key] = (_refusals(schema, valid, probe), list(probe.failures))
    return cached


def _refusals(schema: Any, valid: Callable[[Any], bool], probe: RefusalProbe) -> _Found:
    """Undocumented refusals of valid request bodies, each with the smallest body found: the
    hand-built bodies first, then rounds of the seeded search, each for a refusal not yet found."""
    found: _Found = {}
    for body in request_instances(schema):
        refused = probe.undocumented(body) if valid(body) else None
        if refused is not None and (refused.key not in found or _size(body) < _size(found[refused.key][1])):
            found[refused.key] = (refused, body)
    strategy = cache(partial(request_strategy, schema))
    for _ in range(SEARCH_ROUNDS):
        hits = search_strategy(
            strategy, lambda body: valid(body) and probe.undocumented(body, skip=found) is not None, SEARCH_REQUESTS
        )
        refused = probe.undocumented(hits[0], skip=found) if hits else None
        if refused is None:
            break
        found[refused.key] = (refused, hits[0])
    return found


def _refusal_message(refused: Refused, has_bad_request: bool) -> str:
    where = (
        "add it to this response's x-refusals"
        if has_bad_request
        else "document a 400 response that lists it in x-refusals"
    )
    return (
        f"{refused.refuser} refuses the schema-valid witness with code {refused.code!r}, "
        f"param {refused.param!r} ({refused.message}), but the document does not say so; {where}"
    )


RULES: tuple[Callable[[_LintContext], Iterator[Finding]], ...] = (
    rule_openapi_structure,
    rule_oneof_overlap,
    rule_ambiguous_response,
    rule_unsatisfiable,
    rule_dangling_ref,
    rule_unused_schema,
    rule_single_tool_call,
    rule_null_forbidden,
    rule_stream_not_documented,
    rule_no_error_responses,
    rule_undocumented_refusal,
)
