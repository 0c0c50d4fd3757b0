"""Write the contract in OpenAPI 3.2 form, for tools that read a stream's schema as 3.2 means it.

Before 3.2, OpenAPI cannot say that the ``schema`` of ``text/event-stream`` describes
each event's ``data`` rather than the event, so tools such as Schemathesis apply it to
the event envelope and refuse every correct stream. 3.2 says it with ``itemSchema``.
The export is derived from the loaded document on every run, never kept by hand, so
the two forms cannot drift apart; :func:`contract.core.spec.load_spec` reads it back with
the same meaning.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from .core.profiles import Profile
from .core.spec import Spec, SpecError, convert_document, load_spec
from .core.validate import EVENT_STREAM, media_type_of

EXPORT_VERSIONS = ("3.2",)
OPENAPI_VERSION = "3.2.0"

# Keys under which a content map cannot appear: schemas (a property may be named
# "content"), examples (free data) and extensions (free data).
_NOT_DOCUMENT_STRUCTURE = ("schema", "itemSchema", "example", "examples")


def export_openapi_32(spec: Spec) -> dict[str, Any]:
    """The document as OpenAPI 3.2: JSON Schema 2020-12 schemas and event streams by ``itemSchema``."""
    document = convert_document(spec.raw, legacy_dialect=spec.version.startswith("3.0"), oas_dialect=True)
    document.pop("openapi", None)
    for content in _content_maps(document):
        for media_type, entry in list(content.items()):
            if (
                media_type_of(media_type) == EVENT_STREAM
                and isinstance(entry, dict)
                and "schema" in entry
                and "itemSchema" not in entry
            ):
                content[media_type] = _with_item_schema(entry)
    return {"openapi": OPENAPI_VERSION, **document}


def _with_item_schema(entry: dict[str, Any]) -> dict[str, Any]:
    """The media type with its per-event ``schema`` turned into an ``itemSchema`` of the whole event."""
    schema = entry["schema"]
    as_json = {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    about = f"one {ref.rsplit('/', 1)[-1]} as JSON" if isinstance(ref, str) else "one item as JSON"
    terminator = entry.get("x-sse-terminator")
    if isinstance(terminator, str):
        # anyOf, not oneOf: contentSchema is only an annotation to most JSON Schema validators,
        # so to them the terminator is a string that fits the second branch as well.
        data: dict[str, Any] = {"anyOf": [{"const": terminator}, as_json]}
        about += f", or {terminator} to end the stream"
    else:
        data = as_json
    item = {
        "description": f"One Server-Sent Event; its data is {about}.",
        "type": "object",
        "required": ["data"],
        "properties": {"data": data},
    }
    converted: dict[str, Any] = {}
    for key, value in entry.items():  # in place of `schema`, so the keys keep their order
        if key == "schema":
            converted["itemSchema"] = item
        else:
            converted[key] = value
    return converted


def _content_maps(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every ``content`` map (media type -> Media Type Object) of paths, webhooks and components."""

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _NOT_DOCUMENT_STRUCTURE or key.startswith("x-"):
                    continue
                if key == "content" and isinstance(value, dict):
                    yield value
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for key in ("paths", "webhooks"):
        yield from walk(document.get(key))
    components = document.get("components")
    if isinstance(components, dict):
        for key, value in components.items():
            if key != "schemas":
                yield from walk(value)


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with no anchors, so each part of the output reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: dict[str, Any], source: str) -> str:
    header = (
        f"# {Path(source).name} in OpenAPI {document.get('openapi')} form, written by "
        f"contract-check --export-spec.\n# Derived from that document: change it there, then export again.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def export_main(
    spec_path: str | None, version: str, output: str | None, out: TextIO, profile: Profile | None = None
) -> int:
    """``contract-check --export-spec 3.2 [-o FILE]``: 0 written, 2 a usage or input error."""
    if version not in EXPORT_VERSIONS:
        return _usage(f"--export-spec: cannot export OpenAPI {version}; supported: {', '.join(EXPORT_VERSIONS)}")
    if output is not None and not Path(output).resolve().parent.is_dir():
        return _usage(f"cannot write --output {output}: no such directory")
    try:
        spec = load_spec(spec_path, profile)
    except SpecError as exc:
        return _usage(str(exc))
    text = to_yaml(export_openapi_32(spec), spec.source)
    if output is None:
        out.write(text)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        return _usage(f"cannot write --output {output}: {exc.strerror or type(exc).__name__}")
    return 0


def _usage(message: str) -> int:
    sys.stderr.write(f"contract-check: error: {message}\n")
    return 2
