"""Loading OpenAPI 3.0 / 3.1 / 3.2 documents into plain JSON Schema, and one-line errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.core.spec import SpecError, load_spec
from contract.core.validate import ContractValidator


def document(
    version: str = "3.0.3", schemas: dict[str, Any] | None = None, ok_content: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "openapi": version,
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/chat/completions": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": ok_content
                            or {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}},
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {"Req": {"type": "object", "properties": {"n": {"type": "integer"}}}, **(schemas or {})}
        },
    }


def write(tmp_path: Path, doc: Any, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if name.endswith(".json") else yaml.safe_dump(doc), encoding="utf-8")
    return path


def checker(tmp_path: Path, doc: dict[str, Any]) -> ContractValidator:
    return ContractValidator(load_spec(write(tmp_path, doc)))


def test_yaml_and_json_load_alike(tmp_path):
    from_yaml = load_spec(write(tmp_path, document(), "doc.yaml"))
    from_json = load_spec(write(tmp_path, document(), "doc.json"))
    assert from_yaml.document == from_json.document
    op = from_json.operation("/chat/completions", "POST")
    assert op.request_body_required
    assert (
        op.request_body["application/json"].pointer
        == "#/paths/~1chat~1completions/post/requestBody/content/application~1json/schema"
    )
    assert op.response_for(200) is op.responses["200"] and op.response_for(404) is None


def test_bundled_contract_loads_by_default():
    spec = load_spec()
    assert spec.source.endswith("openapi.yaml") and spec.operation().responses["200"].content


@pytest.mark.parametrize(
    ("prop", "accepted", "refused"),
    [
        ({"type": "string", "nullable": True}, ["a", None], [1]),
        ({"type": "string", "enum": ["a", "b"], "nullable": True}, ["a", None], ["c"]),
        ({"allOf": [{"$ref": "#/components/schemas/Inner"}], "nullable": True}, [{"k": 1}, None], [{"k": "x"}, 3]),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}, ["a", 2, None], [[]]),
    ],
    ids=["type", "enum", "allOf-ref", "oneOf"],
)
def test_nullable_conversion(tmp_path, prop, accepted, refused):
    doc = document(
        schemas={
            "Inner": {"type": "object", "properties": {"k": {"type": "integer"}}},
            "Holder": {"type": "object", "properties": {"v": prop}},
        }
    )
    check = checker(tmp_path, doc)
    for value in accepted:
        assert check.validate_at("#/components/schemas/Holder", {"v": value}) == [], value
    for value in refused:
        assert check.validate_at("#/components/schemas/Holder", {"v": value}) != [], value


def test_not_nullable_refuses_null(tmp_path):
    check = checker(tmp_path, document())
    assert [e.path for e in check.validate_request({"n": None})] == ["/n"]


def test_openapi_only_keywords_dropped(tmp_path):
    prop = {
        "type": "string",
        "example": "gpt-4o",
        "x-internal": True,
        "xml": {"name": "m"},
        "externalDocs": {"url": "https://example.invalid"},
    }
    pet = {"type": "object", "discriminator": {"propertyName": "kind"}, "properties": {"kind": {"type": "string"}}}
    spec = load_spec(write(tmp_path, document(schemas={"Model": prop, "Pet": pet})))
    assert spec.document["components"]["schemas"]["Model"] == {"type": "string"}
    assert "discriminator" not in spec.document["components"]["schemas"]["Pet"]
    assert spec.raw["components"]["schemas"]["Model"]["example"] == "gpt-4o"  # the document as written is kept


def test_exclusive_minimum_boolean_in_30(tmp_path):
    bounded = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "exclusiveMaximum": False}
    check = checker(tmp_path, document(schemas={"Rate": bounded}))
    assert check.spec.document["components"]["schemas"]["Rate"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
    }
    assert check.validate_at("#/components/schemas/Rate", 0) != []
    assert check.validate_at("#/components/schemas/Rate", 1) == []


def test_31_type_arrays_and_numeric_exclusive_bounds(tmp_path):
    schemas = {"Maybe": {"type": ["string", "null"]}, "Positive": {"type": "number", "exclusiveMinimum": 0}}
    check = checker(tmp_path, document("3.1.0", schemas))
    assert check.validate_at("#/components/schemas/Maybe", None) == []
    assert check.validate_at("#/components/schemas/Maybe", 3) != []
    assert check.validate_at("#/components/schemas/Positive", 0) != []
    assert check.validate_at("#/components/schemas/Positive", 0.5) == []


@pytest.mark.parametrize("with_data", [True, False], ids=["data-contentSchema", "bare-itemSchema"])
def test_32_item_schema_for_event_stream(tmp_path, with_data):
    chunk_ref = {"$ref": "#/components/schemas/Req"}
    item = (
        {
            "type": "object",
            "properties": {
                "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": chunk_ref}
            },
        }
        if with_data
        else chunk_ref
    )
    content = {"text/event-stream": {"itemSchema": item}}
    check = checker(tmp_path, document("3.2.0", ok_content=content))
    media = check.spec.operation().responses["200"].content["text/event-stream"]
    expected_tail = "/itemSchema/properties/data/contentSchema" if with_data else "/itemSchema"
    assert media.pointer.endswith("/200/content/text~1event-stream" + expected_tail)
    assert check.validate_event({"n": 1}) == []
    assert [e.path for e in check.validate_event({"n": "one"})] == ["/n"]


@pytest.mark.parametrize("keyword", ["anyOf", "oneOf"])
def test_32_item_schema_data_is_json_or_the_terminator(tmp_path, keyword):
    as_json = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"$ref": "#/components/schemas/Req"},
    }
    item = {"type": "object", "properties": {"data": {keyword: [{"const": "[END]"}, as_json]}}}
    check = checker(tmp_path, document("3.2.0", ok_content={"text/event-stream": {"itemSchema": item}}))
    media = check.spec.operation().responses["200"].content["text/event-stream"]
    assert media.pointer.endswith(f"/itemSchema/properties/data/{keyword}/1/contentSchema")
    assert media.terminator == "[END]"  # no x-sse-terminator: the const branch says it
    assert check.validate_event({"n": 1}) == []
    assert [e.path for e in check.validate_event({"n": "one"})] == ["/n"]


def test_inline_replaces_refs_and_cuts_recursion(tmp_path):
    children = {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}
    tree = {"type": "object", "properties": {"children": children}}
    spec = load_spec(write(tmp_path, document(schemas={"Tree": tree})))
    inlined = spec.inline({"$ref": "#/components/schemas/Tree"}, max_depth=2)
    assert "$ref" not in json.dumps(inlined)
    level2 = inlined["properties"]["children"]["items"]
    assert level2["properties"]["children"]["items"] == {}  # cut after two repetitions
    flat = spec.inline({"$ref": "#/components/schemas/Req"})
    assert flat == {"type": "object", "properties": {"n": {"type": "integer"}}}


# -- bad inputs: SpecError, one line ---------------------------------------------------------


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file(tmp_path):
    assert "no such file" in spec_error(tmp_path / "absent.yaml")


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("openapi: 3.0.0\npaths:\n  /x: {post: [\n", encoding="utf-8")
    message = spec_error(path)
    assert message.startswith(f"{path}:4:1: YAML syntax error")


def test_json_syntax_error_has_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"openapi": "3.0.0",\n "paths": }', encoding="utf-8")
    assert spec_error(path).startswith(f"{path}:2:11: JSON syntax error")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('swagger: "2.0"\npaths: {}\n', "Swagger 2.0 is not supported"),
        ("- a\n- b\n", "the top level is not a mapping"),
        ("info: {title: t}\n", "not an OpenAPI 3 document"),
        ("openapi: 3.0.0\npaths: [1]\n", "'paths' must be a mapping"),
    ],
    ids=["swagger-2", "plain-list", "no-openapi-field", "paths-not-mapping"],
)
def test_not_openapi(tmp_path, text, expected):
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    assert expected in spec_error(path)


def test_ref_to_nowhere(tmp_path):
    doc = document()
    doc["components"]["schemas"]["Req"]["properties"]["m"] = {"$ref": "#/components/schemas/Missing"}
    message = spec_error(write(tmp_path, doc))
    assert "$ref '#/components/schemas/Missing'" in message and "resolves nowhere" in message


def test_unquoted_status_codes_load(tmp_path):
    """``200:`` unquoted is a YAML integer; the document still means the response "200"."""
    from conftest import ROOT

    document = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    responses = document["paths"]["/chat/completions"]["post"]["responses"]
    document["paths"]["/chat/completions"]["post"]["responses"] = {int(k): v for k, v in responses.items()}
    path = tmp_path / "unquoted.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert "      200:\n" in path.read_text() and "'200'" not in path.read_text()
    spec = load_spec(path)
    assert spec.operation().response_for(200) is not None
    assert spec.operation().response_for(200).content["text/event-stream"].terminator == "[DONE]"
