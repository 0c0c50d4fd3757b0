"""Load an OpenAPI document and expose its operations as plain JSON Schema.

Both halves of the toolkit read the contract through this module, so the
OpenAPI 3.0 dialect (``nullable``, ``example``, ``discriminator``, ``x-*``) is
turned into JSON Schema once, here, and ``$ref`` resolution is left to the
``referencing`` library rather than re-implemented.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from . import pointers
from .profiles import Profile, ProfileError, apply_profile, as_profile
from .textfile import UnreadableFile, read_text

DOCUMENT_URI = "urn:contract:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Keywords whose value is one schema, a list of schemas, or a name -> schema map.
SCHEMA_KEYWORDS = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
)
SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")
_OPENAPI_ONLY_KEYWORDS = ("nullable", "discriminator", "xml", "externalDocs", "example")


class SpecError(Exception):
    """The document cannot be used; the message is one line that says where and what."""


@dataclass(frozen=True)
class MediaSchema:
    """The schema of one media type of a request or response body."""

    media_type: str
    pointer: str  # JSON pointer of the schema inside the document
    schema: dict[str, Any]
    terminator: str | None = None  # text/event-stream: the data that ends the stream
    extensions: dict[str, Any] = field(default_factory=dict, compare=False)  # the media entry's x- keys


@dataclass(frozen=True)
class ResponseSpec:
    status: str
    description: str
    content: dict[str, MediaSchema]
    headers: dict[str, Any]
    pointer: str


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    operation_id: str
    pointer: str
    request_body: dict[str, MediaSchema]
    request_body_required: bool
    responses: dict[str, ResponseSpec]

    def response_for(self, status: int) -> ResponseSpec | None:
        """The documented response for a status: exact code, then ``4XX`` style, then ``default``."""
        for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
            if key in self.responses:
                return self.responses[key]
        return None


@dataclass
class Spec:
    """A loaded, dialect-converted OpenAPI document."""

    source: str
    raw: dict[str, Any]
    document: dict[str, Any]
    version: str
    registry: Registry = field(repr=False)
    operations: list[Operation] = field(default_factory=list)
    profile: Profile = field(default_factory=Profile)

    def resolve(self, pointer: str) -> Any:
        """The node at a JSON pointer (``#/a/b``) of the converted document."""
        try:
            return self.registry.resolver(DOCUMENT_URI).lookup(f"{DOCUMENT_URI}{pointer}").contents
        except Unresolvable as exc:
            raise SpecError(f"{self.source}: $ref {pointer!r} resolves nowhere") from exc

    def operation(self, path: str = "/chat/completions", method: str = "post") -> Operation:
        for op in self.operations:
            if op.path == path and op.method == method.lower():
                return op
        raise SpecError(f"{self.source}: no operation {method.upper()} {path}")

    def inline(self, schema: dict[str, Any], max_depth: int = 3) -> dict[str, Any]:
        """The schema with every ``$ref`` replaced by its target (for hypothesis-jsonschema).

        A recursive reference is cut after ``max_depth`` repetitions and replaced by
        ``{}``, since an inlined schema cannot be infinite.
        """
        return _inline(self, schema, (), max_depth)


pointer_escape = pointers.escape  # the names the rest of the code imports from here
pointer_join = pointers.join


def default_spec_path() -> Path:
    """The project's contract: shipped inside the wheel, or at the repository root."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "openapi.yaml", package.parent / "openapi.yaml"):
        if candidate.is_file():
            return candidate
    raise SpecError("the bundled openapi.yaml is missing from this installation")


def load_spec(path: str | Path | None = None, profile: Profile | str | None = None) -> Spec:
    """Read, check and convert an OpenAPI document (YAML or JSON, 3.0 / 3.1 / 3.2) in a profile's dialect.

    The profile's overlays (``contract.core.profiles``) are applied to the document as read, before anything
    else looks at it, so every tool sees the dialect's document and nothing else.
    """
    source = Path(path) if path is not None else default_spec_path()
    try:
        chosen = as_profile(profile)
        raw = apply_profile(_read_document(source), chosen, read_document)
    except ProfileError as exc:
        raise SpecError(str(exc)) from None
    version = str(raw.get("openapi", ""))
    if not version.startswith(("3.0", "3.1", "3.2")):
        if "swagger" in raw:
            raise SpecError(f"{source}: Swagger {raw['swagger']} is not supported; convert it to OpenAPI 3")
        raise SpecError(f"{source}: not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    if not isinstance(raw.get("paths", {}), dict):
        raise SpecError(f"{source}: 'paths' must be a mapping")
    _status_keys_as_text(raw)
    document = convert_document(raw, legacy_dialect=version.startswith("3.0"))
    registry = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(document))
    spec = Spec(source=str(source), raw=raw, document=document, version=version, registry=registry, profile=chosen)
    spec.operations = list(_operations(spec))
    return spec


def _status_keys_as_text(raw: dict[str, Any]) -> None:
    """YAML reads an unquoted ``200:`` as a number; JSON pointers and OpenAPI name it ``"200"``."""
    for item in raw.get("paths", {}).values():
        for operation in item.values() if isinstance(item, dict) else ():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if isinstance(responses, dict) and any(not isinstance(key, str) for key in responses):
                operation["responses"] = {str(key): value for key, value in responses.items()}


def read_document(source: Path) -> Any:
    """A YAML or JSON file as data (an overlay, say); SpecError with ``file:line:column`` when it cannot be read."""
    try:
        text = read_text(source)
    except UnreadableFile as exc:
        raise SpecError(f"{source}: {exc.reason}") from None
    try:
        if source.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{source}:{exc.lineno}:{exc.colno}: JSON syntax error: {exc.msg}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise SpecError(f"{where}: YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: YAML error: {exc}") from None
    return data


def _read_document(source: Path) -> dict[str, Any]:
    data = read_document(source)
    if not isinstance(data, dict):
        raise SpecError(f"{source}: not an OpenAPI document (the top level is not a mapping)")
    return data


def convert_document(raw: dict[str, Any], legacy_dialect: bool = True, *, oas_dialect: bool = False) -> dict[str, Any]:
    """A copy of the document whose every schema is plain JSON Schema (see :func:`convert_schema`)."""
    document = copy.deepcopy(raw)
    for schema_holder, key in _schema_slots(document):
        schema_holder[key] = convert_schema(schema_holder[key], legacy_dialect, oas_dialect=oas_dialect)
    return document


def convert_schema(schema: Any, legacy_dialect: bool = True, *, oas_dialect: bool = False) -> Any:
    """Turn one OpenAPI schema into JSON Schema that jsonschema and hypothesis-jsonschema take.

    With ``oas_dialect`` the result is for an OpenAPI 3.1+ document instead: the
    annotations that dialect still allows (``x-*``, ``discriminator``, ``xml``,
    ``externalDocs``) are kept and ``example`` becomes ``examples``, so nothing a
    reader of the document relies on is lost.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if _dropped(key, oas_dialect):
            continue
        if key in SCHEMA_KEYWORDS:
            out[key] = convert_schema(value, legacy_dialect, oas_dialect=oas_dialect)
        elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            out[key] = [convert_schema(v, legacy_dialect, oas_dialect=oas_dialect) for v in value]
        elif key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            out[key] = {name: convert_schema(v, legacy_dialect, oas_dialect=oas_dialect) for name, v in value.items()}
        else:
            out[key] = value
    if legacy_dialect:
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(bound), bool):
                if out.pop(bound) and limit in out:
                    out[bound] = out.pop(limit)
    if oas_dialect and ("example" in schema or "examples" in schema):
        examples = list(schema["examples"]) if isinstance(schema.get("examples"), list) else []
        if "example" in schema and schema["example"] not in examples:
            examples.append(schema["example"])
        if examples:
            out["examples"] = examples
    if schema.get("nullable") is True:
        out = _make_nullable(out)
    return out


def _dropped(key: str, oas_dialect: bool) -> bool:
    """Whether ``convert_schema`` leaves a key out (``example(s)`` it rewrites itself)."""
    if oas_dialect:
        return key in ("nullable", "example", "examples")
    return key.startswith("x-") or key in _OPENAPI_ONLY_KEYWORDS


def _make_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
        return schema
    if isinstance(kind, list):
        if "null" not in kind:
            schema["type"] = [*kind, "null"]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _schema_slots(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (container, key) whose value is a schema root in an OpenAPI document."""
    components = document.get("components")
    if isinstance(components, dict) and isinstance(components.get("schemas"), dict):
        schemas = components["schemas"]
        for name in list(schemas):
            yield schemas, name

    def walk(node: Any) -> Iterator[tuple[dict[str, Any], str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("schema", "itemSchema") and isinstance(value, dict):
                    yield node, key
                elif isinstance(value, (dict, list)):
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for key, value in document.items():
        if key == "components" and isinstance(value, dict):
            for ckey, cvalue in value.items():
                if ckey != "schemas":
                    yield from walk(cvalue)
        elif key in ("paths", "webhooks"):
            yield from walk(value)


def _operations(spec: Spec) -> Iterator[Operation]:
    for path, item in (spec.document.get("paths") or {}).items():
        if not isinstance(item, dict):
            raise SpecError(f"{spec.source}: path {path!r} is not a mapping")
        item_pointer = pointer_join("#/paths", path)
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            op_pointer = pointer_join(item_pointer, method)
            body, body_required = _request_body(spec, op, op_pointer)
            responses = {
                str(status): _response(spec, str(status), response, pointer_join(op_pointer, "responses", status))
                for status, response in (op.get("responses") or {}).items()
            }
            yield Operation(
                path=path,
                method=method,
                operation_id=str(op.get("operationId", f"{method} {path}")),
                pointer=op_pointer,
                request_body=body,
                request_body_required=body_required,
                responses=responses,
            )


def _follow(spec: Spec, node: Any, pointer: str) -> tuple[Any, str]:
    """Follow a chain of Reference Objects (``$ref`` to a response, a request body...)."""

    def cycle(target: str) -> None:
        raise SpecError(f"{spec.source}: $ref cycle at {target}")

    node, pointer = pointers.follow_refs(node, pointer, spec.resolve, on_cycle=cycle)
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        raise SpecError(f"{spec.source}: $ref {node['$ref']!r} at {pointer} points outside the document")
    return node, pointer


def _content(spec: Spec, content: Any, pointer: str) -> dict[str, MediaSchema]:
    media: dict[str, MediaSchema] = {}
    for media_type, entry in (content or {}).items():
        if not isinstance(entry, dict):
            continue
        entry_pointer = pointer_join(pointer, media_type)
        terminator = entry.get("x-sse-terminator")
        if "itemSchema" in entry:  # OpenAPI 3.2: one schema per streamed item
            schema, schema_pointer, item_terminator = _event_data_schema(
                entry["itemSchema"], pointer_join(entry_pointer, "itemSchema")
            )
            terminator = terminator if isinstance(terminator, str) else item_terminator
        elif "schema" in entry:
            schema, schema_pointer = entry["schema"], pointer_join(entry_pointer, "schema")
        else:
            continue
        media[media_type] = MediaSchema(
            media_type,
            schema_pointer,
            schema,
            terminator if isinstance(terminator, str) else None,
            {key: value for key, value in entry.items() if str(key).startswith("x-")},
        )
        spec.resolve(schema_pointer)  # fail early on a broken pointer
        _check_refs(spec, schema, schema_pointer)
    return media


def _event_data_schema(item_schema: Any, pointer: str) -> tuple[Any, str, str | None]:
    """For an SSE ``itemSchema`` that describes the event, the schema of its ``data`` and the terminator.

    ``data`` is a JSON string with a ``contentSchema``, or ``anyOf`` / ``oneOf`` of one
    and a ``const`` that ends the stream (``[DONE]``), as ``contract-check --export-spec``
    writes it; any other ``itemSchema`` is taken as the schema of the data itself.
    """
    data = (item_schema.get("properties") or {}).get("data") if isinstance(item_schema, dict) else None
    if isinstance(data, dict):
        data_pointer = pointer_join(pointer, "properties", "data")
        if isinstance(data.get("contentSchema"), dict):
            return data["contentSchema"], pointer_join(data_pointer, "contentSchema"), None
        for keyword in ("anyOf", "oneOf"):
            listed = data.get(keyword)
            branches = [(i, b) for i, b in enumerate(listed if isinstance(listed, list) else []) if isinstance(b, dict)]
            content = [(i, b) for i, b in branches if isinstance(b.get("contentSchema"), dict)]
            if content:
                index, branch = content[0]
                ends = [b["const"] for _, b in branches if isinstance(b.get("const"), str)]
                return (
                    branch["contentSchema"],
                    pointer_join(data_pointer, keyword, index, "contentSchema"),
                    ends[0] if ends else None,
                )
    return item_schema, pointer, None


def _check_refs(spec: Spec, schema: Any, pointer: str) -> None:
    """Raise on the first ``$ref`` under ``schema`` that resolves nowhere."""
    seen: set[str] = set()
    stack = [(schema, pointer)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if not ref.startswith("#"):
                    raise SpecError(f"{spec.source}: $ref {ref!r} at {where} points outside the document")
                if ref not in seen:
                    seen.add(ref)
                    try:
                        target = spec.registry.resolver(DOCUMENT_URI).lookup(f"{DOCUMENT_URI}{ref}").contents
                    except Unresolvable:
                        raise SpecError(f"{spec.source}: $ref {ref!r} at {where} resolves nowhere") from None
                    stack.append((target, ref))
            for key, value in node.items():
                if key != "$ref":
                    stack.append((value, pointer_join(where, key)))
        elif isinstance(node, list):
            stack.extend((item, pointer_join(where, i)) for i, item in enumerate(node))


def _request_body(spec: Spec, op: dict[str, Any], op_pointer: str) -> tuple[dict[str, MediaSchema], bool]:
    if "requestBody" not in op:
        return {}, False
    body, pointer = _follow(spec, op["requestBody"], pointer_join(op_pointer, "requestBody"))
    if not isinstance(body, dict):
        return {}, False
    return _content(spec, body.get("content"), pointer_join(pointer, "content")), bool(body.get("required"))


def _response(spec: Spec, status: str, response: Any, pointer: str) -> ResponseSpec:
    response, pointer = _follow(spec, response, pointer)
    if not isinstance(response, dict):
        raise SpecError(f"{spec.source}: response {status} at {pointer} is not a mapping")
    headers = {}
    for name, header in (response.get("headers") or {}).items():
        headers[name.lower()], _ = _follow(spec, header, pointer_join(pointer, "headers", name))
    return ResponseSpec(
        status=status,
        description=str(response.get("description", "")),
        content=_content(spec, response.get("content"), pointer_join(pointer, "content")),
        headers=headers,
        pointer=pointer,
    )


def _inline(spec: Spec, schema: Any, stack: tuple[str, ...], max_depth: int) -> Any:
    if isinstance(schema, list):
        return [_inline(spec, item, stack, max_depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        pointer = ref[len(DOCUMENT_URI) :] if ref.startswith(DOCUMENT_URI) else ref
        if stack.count(pointer) >= max_depth:
            return {}
        target = _inline(spec, spec.resolve(pointer), (*stack, pointer), max_depth)
        siblings = {k: _inline(spec, v, stack, max_depth) for k, v in schema.items() if k != "$ref"}
        return {"allOf": [target, siblings]} if siblings else target
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            out[key] = {name: _inline(spec, v, stack, max_depth) for name, v in value.items()}
        elif key in SCHEMA_KEYWORDS or key in SCHEMA_LIST_KEYWORDS:
            out[key] = _inline(spec, value, stack, max_depth)
        else:
            out[key] = value
    return out
