"""The lint's rules: each a function from the document to its findings of one defect.

A validator that says "no" to a correct server is worse than none: the user blames the
server. So each rule looks for a place where the document contradicts itself (``oneOf``
branches that overlap, enums no instance can meet, references to nowhere) or where no
real reply can validate (a streamed reply with no ``text/event-stream``, fields real
servers send as ``null``), and gives, where the defect is about instances, a witness.
:func:`lint_spec` runs them all, in the order of :data:`RULES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..core import pointers, schemas
from ..core.spec import Spec, convert_schema, pointer_join
from .document import LintContext, declared_types, schema_properties, subschemas, tag_values
from .findings import Finding, Level, compact_json
from .refusal_search import rule_undocumented_refusal
from .refusals import Refuser, named_refusers
from .structure import StructureUnchecked, structure_problems
from .witnesses import find_overlap, minimal_instance

# Fields that OpenAI-compatible servers send as null in ordinary traffic. A name list
# is a heuristic, stated as one: it is why the rule looks only where these fields live.
NULL_IN_RESPONSES = ("finish_reason", "content", "refusal")  # any object in a reply
NULL_IN_CHUNKS = ("usage",)  # every streamed chunk but the usage chunk
NULL_IN_TOOL_TURNS = ("content",)  # a message that can carry tool_calls


def lint_spec(spec: Spec, refusers: Mapping[str, Refuser] | Iterable[Refuser] | None = None) -> list[Finding]:
    """Every finding of every rule, errors first, then by location.

    ``refusers`` are the request checks rule undocumented-refusal asks (by name, or named after
    their functions); ``None`` means those installed under the entry-point group
    ``chatstream_testkit.request_refusers``, and an empty collection turns the rule off.
    """
    context = LintContext(spec, named_refusers(refusers))
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule(context))
    return sorted(findings, key=lambda f: (f.level != "error", f.location, f.rule))


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


def _schema_name(branch: Any, index: int) -> str:
    if isinstance(branch, dict) and isinstance(branch.get("$ref"), str):
        return branch["$ref"].rsplit("/", 1)[-1]
    return f"branch #{index}"


def rule_openapi_structure(ctx: LintContext) -> Iterator[Finding]:
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


def rule_oneof_overlap(ctx: LintContext) -> Iterator[Finding]:
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


def rule_ambiguous_response(ctx: LintContext) -> Iterator[Finding]:
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


def rule_unsatisfiable(ctx: LintContext) -> Iterator[Finding]:
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
        properties = schema_properties(node)
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


def _misnamed_tags(ctx: LintContext) -> Iterator[Finding]:
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
        values = [tag_values((t[0].get("properties") or {}).get(tag)) or [] for t in targets]
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
            base = minimal_instance(ctx.plain(branches[index]))
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
        tagged = {n for n in schema.get("required", []) if tag_values(props.get(n)) is not None}
        common = tagged if common is None else common & tagged
    return sorted(common)[0] if common else None


def rule_dangling_ref(ctx: LintContext) -> Iterator[Finding]:
    for holder, target in _refs(ctx.raw, "#"):
        location = pointer_join(holder, "$ref")
        if not target.startswith("#"):
            yield Finding("error", "dangling-ref", location, f"$ref {target!r} points outside the document")
            continue
        try:
            pointers.lookup(ctx.raw, target)
        except LookupError:
            yield Finding("error", "dangling-ref", location, f"$ref {target!r} resolves nowhere")


def rule_unused_schema(ctx: LintContext) -> Iterator[Finding]:
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


def rule_single_tool_call(ctx: LintContext) -> Iterator[Finding]:
    """``tool_calls`` as one object: a turn with parallel calls cannot validate."""
    for pointer, node in ctx.schema_nodes():
        prop = schema_properties(node).get("tool_calls")
        if not isinstance(prop, dict):
            continue
        kinds = declared_types(ctx.follow(prop, pointer)[0]) or set()
        if "object" not in kinds or "array" in kinds:
            continue
        call = minimal_instance(ctx.plain(prop), full=2)
        calls = [{**call, "id": f"call_{n}"} if isinstance(call, dict) and "id" in call else call for n in (1, 2)]
        yield Finding(
            "error",
            "single-tool-call",
            pointer_join(pointer, "properties", "tool_calls"),
            "tool_calls is one object, so a turn with parallel tool calls (the witness) cannot "
            "validate; make it an array of tool calls",
            calls,
        )


def rule_null_forbidden(ctx: LintContext) -> Iterator[Finding]:
    """Fields real servers send as null, typed so that null is refused.

    Error, not warning: every streamed chunk but the last has ``finish_reason: null``, so
    with such a type no real stream validates. Which fields: a stated list of names known
    to be null in OpenAI-compatible traffic, looked for only where they occur there.
    """
    seen: set[str] = set()
    for pointer, schema, where in _reached_objects(ctx):
        props = schema_properties(schema)
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
            base = minimal_instance(ctx.plain(schema))
            witness = {**(base if isinstance(base, dict) else {}), name: None}
            yield Finding(
                "error",
                "null-forbidden",
                location,
                f"{name} cannot be null, but real servers send null there; mark it nullable",
                witness,
            )


def _reached_objects(ctx: LintContext) -> Iterator[tuple[str, dict[str, Any], str]]:
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
        for sub_pointer, sub in subschemas(node, pointer):
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


def rule_stream_not_documented(ctx: LintContext) -> Iterator[Finding]:
    """A request can ask for a stream, but no reply documents one: no streamed reply validates."""
    for op_pointer, op in ctx.operations():
        body, body_pointer = ctx.follow(op.get("requestBody"), pointer_join(op_pointer, "requestBody"))
        request_schema = None
        streamable = op.get("x-stream") is True
        if isinstance(body, dict):
            for entry in (body.get("content") or {}).values():
                if isinstance(entry, dict) and isinstance(entry.get("schema"), dict):
                    request_schema = ctx.plain(entry["schema"])
                    stream = schema_properties(request_schema).get("stream")
                    if isinstance(stream, dict) and "boolean" in (declared_types(stream) or set()):
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
        witness = minimal_instance(request_schema) if request_schema is not None else None
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


def rule_no_error_responses(ctx: LintContext) -> Iterator[Finding]:
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


RULES: tuple[Callable[[LintContext], Iterator[Finding]], ...] = (
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
