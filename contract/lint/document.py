"""The document as written, walked the way every rule needs it, and what a schema declares.

Rules report JSON pointers into the document as its author wrote it, so they walk the
raw document (not the loaded, inlined one) and inline a schema only to judge instances.
:class:`LintContext` holds the document and those walks; the functions below it read
one schema node: its sub-schemas, properties, declared types and tag values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..core import pointers
from ..core.spec import (
    SCHEMA_KEYWORDS,
    SCHEMA_LIST_KEYWORDS,
    SCHEMA_MAP_KEYWORDS,
    Spec,
    SpecError,
    convert_schema,
    pointer_join,
)
from ..core.validate import ContractValidator
from .refusals import Refuser


class LintContext:
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
            yield from subschemas(schema, pointer)

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


def subschemas(schema: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``schema`` and every schema nested in it by a schema keyword, each with its pointer."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for key, value in schema.items():
        if key in SCHEMA_KEYWORDS:
            yield from subschemas(value, pointer_join(pointer, key))
        elif key in SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            for index, item in enumerate(value):
                yield from subschemas(item, pointer_join(pointer, key, index))
        elif key in SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for name, item in value.items():
                yield from subschemas(item, pointer_join(pointer, key, name))


def schema_properties(schema: Any) -> dict[str, Any]:
    """A schema's ``properties``; empty when it has none (or is not a schema)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def declared_types(schema: Any) -> set[str] | None:
    """The types a schema's ``type`` allows (``number`` admits ``integer`` too); ``None`` when it states none."""
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


def tag_values(schema: Any) -> list[Any] | None:
    """The values a ``const`` or ``enum`` pins a schema to; ``None`` when it pins none."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return [schema["const"]]
    if isinstance(schema.get("enum"), list):
        return list(schema["enum"])
    return None
