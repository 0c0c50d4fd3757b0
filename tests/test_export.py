"""``contract-check --export-spec 3.2``: the contract in OpenAPI 3.2 form, valid, and with the same meaning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.core.spec import Spec, load_spec
from contract.core.validate import EVENT_STREAM, ContractValidator
from contract.export import export_openapi_32, to_yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "openapi.yaml"
SSE_ENTRY = ("paths", "/chat/completions", "post", "responses", "200", "content", EVENT_STREAM)


def contract_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def at(document: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        document = document[key]
    return document


def walk(node: Any):
    """Every mapping key of a document, wherever it sits."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "openapi-3.2.yaml"
    path.write_text(to_yaml(export_openapi_32(load_spec(CONTRACT)), str(CONTRACT)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pair(exported: Path) -> tuple[ContractValidator, ContractValidator]:
    """The project's validator on openapi.yaml, and on its export read back by the project's loader."""
    return ContractValidator(load_spec(CONTRACT)), ContractValidator(load_spec(exported))


# -- the form of the export ------------------------------------------------------------------------


def test_stream_is_described_event_by_event(exported: Path) -> None:
    document = yaml.safe_load(exported.read_text(encoding="utf-8"))
    assert document["openapi"] == "3.2.0"
    entry = at(document, *SSE_ENTRY)
    assert "schema" not in entry and entry["x-sse-terminator"] == "[DONE]"
    item = entry["itemSchema"]
    assert item["type"] == "object" and item["required"] == ["data"]
    assert item["properties"]["data"]["anyOf"] == [
        {"const": "[DONE]"},
        {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/ChatCompletionChunk"},
        },
    ]


def test_openapi_30_dialect_is_gone_and_references_and_extensions_stay(exported: Path) -> None:
    document = yaml.safe_load(exported.read_text(encoding="utf-8"))
    keys = set(walk(document))
    assert "nullable" not in keys and "example" not in keys
    assert at(document, "paths", "/chat/completions", "post", "x-stream") is True
    assert [r["code"] for r in at(document, "components", "responses", "BadRequest", "x-refusals")] == [
        "invalid_tool_choice",
        "invalid_function_parameters",
        "invalid_json_schema",
        "unsupported_audio_format",
        "too_many_tools",
    ]
    schemas = document["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"]["properties"]["param"] == {"type": ["string", "null"]}
    assert schemas["ChatCompletionRequest"]["properties"]["model"] == {"type": "string", "examples": ["gpt-4o"]}
    assert schemas["ChatCompletionChunk"]["properties"]["usage"] == {
        "anyOf": [{"allOf": [{"$ref": "#/components/schemas/Usage"}]}, {"type": "null"}]
    }
    assert at(
        document, "paths", "/chat/completions", "post", "requestBody", "content", "application/json", "schema"
    ) == {"$ref": "#/components/schemas/ChatCompletionRequest"}


def test_the_yaml_reads_back_as_the_same_document() -> None:
    spec = load_spec(CONTRACT)
    document = export_openapi_32(spec)
    text = to_yaml(document, spec.source)
    assert text.startswith("# openapi.yaml in OpenAPI 3.2.0 form")
    assert yaml.safe_load(text) == document and "&id" not in text and "*id" not in text
    assert to_yaml(export_openapi_32(load_spec(CONTRACT)), spec.source) == text  # the same every time


def test_valid_openapi_32(exported: Path) -> None:
    validators = pytest.importorskip("openapi_spec_validator")
    v32 = getattr(validators, "OpenAPIV32SpecValidator", None)
    if v32 is None:
        pytest.skip("this openapi-spec-validator has no OpenAPI 3.2 validator (0.9 has one)")
    validators.validate(yaml.safe_load(exported.read_text(encoding="utf-8")), cls=v32)


# -- the same meaning: the project's validator gives the same verdicts on both forms ---------------


HI = [{"role": "user", "content": "Hi"}]
REQUESTS = [
    {"messages": HI},
    {"messages": HI, "stream": "yes"},
    {"stream": True},
    {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]},
    {"messages": [{"role": "assistant", "content": None, "audio": None, "tool_calls": None}]},
    {"messages": [{"role": "assistant", "name": "a"}]},
    {"messages": HI, "tool_choice": {"type": "function", "function": {"name": "f"}}},
    {"messages": HI, "tool_choice": {"type": "function", "function": {}}},
    {"messages": HI, "tool_choice": "sometimes"},
    {"messages": HI, "modalities": ["text", "video"]},
]
CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
}
EVENTS = [
    CHUNK,
    {**CHUNK, "usage": None},
    {**CHUNK, "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    {**CHUNK, "usage": {"prompt_tokens": "1"}},
    {**CHUNK, "choices": [{"index": 0, "delta": {"content": 5}, "finish_reason": None}]},
    {"id": "c", "object": "chat.completion.chunk"},
    {**CHUNK, "object": "chat.completion"},
]
RESPONSES = [
    (
        200,
        {
            "id": "r",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        },
    ),
    (200, {"id": "r", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0}]}),
    (400, {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}}),
    (400, {"error": {"message": "m", "type": "invalid_request_error", "param": 3}}),
    (429, {"error": {"message": "m"}}),
]


def verdicts(errors: list[Any]) -> list[str]:
    return sorted(error.path for error in errors)


def test_both_forms_accept_and_refuse_the_same_requests(pair: tuple[ContractValidator, ContractValidator]) -> None:
    original, exported = pair
    results = [verdicts(original.validate_request(body)) for body in REQUESTS]
    assert results == [verdicts(exported.validate_request(body)) for body in REQUESTS]
    assert results.count([]) == 4 and len(results) == len(REQUESTS)  # both kinds are covered


def test_both_forms_accept_and_refuse_the_same_events(pair: tuple[ContractValidator, ContractValidator]) -> None:
    original, exported = pair
    results = [verdicts(original.validate_event(data)) for data in EVENTS]
    assert results == [verdicts(exported.validate_event(data)) for data in EVENTS]
    assert results.count([]) == 3
    for validator in pair:
        media = validator.spec.operation().responses["200"].content[EVENT_STREAM]
        assert media.terminator == "[DONE]"
    assert (
        pair[1]
        .spec.operation()
        .responses["200"]
        .content[EVENT_STREAM]
        .pointer.endswith("/itemSchema/properties/data/anyOf/1/contentSchema")
    )


def test_both_forms_accept_and_refuse_the_same_json_replies(pair: tuple[ContractValidator, ContractValidator]) -> None:
    original, exported = pair
    results = [verdicts(original.validate_response(status, body)) for status, body in RESPONSES]
    assert results == [verdicts(exported.validate_response(status, body)) for status, body in RESPONSES]
    assert results.count([]) == 2


# -- the conversion on a document with more of the OpenAPI 3.0 dialect -----------------------------


def legacy_document(version: str = "3.0.3") -> dict[str, Any]:
    return {
        "openapi": version,
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/events": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "text/event-stream": {
                                    "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}
                                },
                            },
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Rate": {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": 1,
                    "exclusiveMaximum": False,
                    "example": 0.5,
                },
                "Colour": {"type": "string", "enum": ["red", "blue"], "nullable": True, "x-order": 2},
                "Pet": {
                    "type": "object",
                    "discriminator": {"propertyName": "kind"},
                    "externalDocs": {"url": "https://example.invalid/pet"},
                    "xml": {"name": "pet"},
                    "properties": {"kind": {"type": "string"}},
                },
            }
        },
    }


def export_of(tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "doc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return export_openapi_32(load_spec(path))


def test_legacy_keywords_become_json_schema_2020_12(tmp_path: Path) -> None:
    schemas = export_of(tmp_path, legacy_document())["components"]["schemas"]
    assert schemas["Rate"] == {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "examples": [0.5]}
    assert schemas["Colour"] == {"type": ["string", "null"], "enum": ["red", "blue", None], "x-order": 2}
    assert schemas["Pet"]["discriminator"] == {"propertyName": "kind"}  # allowed in 3.2: kept
    assert schemas["Pet"]["xml"] == {"name": "pet"} and "externalDocs" in schemas["Pet"]


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_a_stream_without_terminator_has_plain_json_data(tmp_path: Path, version: str) -> None:
    document = export_of(tmp_path, legacy_document(version))
    assert document["openapi"] == "3.2.0"
    entry = at(document, "paths", "/events", "get", "responses", "200", "content", EVENT_STREAM)
    data = entry["itemSchema"]["properties"]["data"]
    assert data["contentMediaType"] == "application/json" and data["contentSchema"]["properties"] == {
        "n": {"type": "integer"}
    }
    path = tmp_path / "exported.yaml"
    path.write_text(to_yaml(document, "doc.yaml"), encoding="utf-8")
    check = ContractValidator(load_spec(path))
    assert check.validate_event({"n": 1}, path="/events", method="get") == []
    assert check.validate_event({"n": "x"}, path="/events", method="get") != []
    media = check.spec.operation("/events", "get").responses["200"].content[EVENT_STREAM]
    assert media.terminator is None


def test_the_loaded_spec_is_left_alone() -> None:
    spec: Spec = load_spec(CONTRACT)
    before = json.dumps(spec.raw, sort_keys=True), json.dumps(spec.document, sort_keys=True)
    export_openapi_32(spec)
    assert (json.dumps(spec.raw, sort_keys=True), json.dumps(spec.document, sort_keys=True)) == before


# -- the command line ------------------------------------------------------------------------------


def test_cli_writes_yaml_to_stdout_or_to_a_file(tmp_path: Path) -> None:
    to_stdout = contract_check("--export-spec", "3.2")
    assert to_stdout.returncode == 0 and to_stdout.stderr == ""
    target = tmp_path / "out.yaml"
    to_file = contract_check("--export-spec", "3.2", "-o", str(target))
    assert to_file.returncode == 0 and to_file.stdout == "" and to_file.stderr == ""
    assert target.read_text(encoding="utf-8") == to_stdout.stdout
    assert yaml.safe_load(to_stdout.stdout)["openapi"] == "3.2.0"
    seed = contract_check("--export-spec", "3.2", "--spec", str(ROOT / "tests" / "data" / "seed-openapi.yaml"))
    assert seed.returncode == 0 and seed.stdout.startswith("# seed-openapi.yaml in OpenAPI 3.2.0 form")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--export-spec", "3.1"], "--export-spec: cannot export OpenAPI 3.1; supported: 3.2"),
        (
            ["--export-spec", "3.2", "-o", "{tmp}/missing/dir/out.yaml"],
            "cannot write --output {tmp}/missing/dir/out.yaml: no such directory",
        ),
        (["--export-spec", "3.2", "-o", "{tmp}"], "cannot write --output {tmp}: Is a directory"),
        (["--export-spec", "3.2", "--spec", "/nonexistent/openapi.yaml"], "/nonexistent/openapi.yaml: no such file"),
        (["-o", "{tmp}/out.yaml"], "-o/--output needs --export-spec"),
        (["--export-spec", "3.2", "--lint"], "--export-spec goes alone: no --lint, no URL"),
        (["--export-spec", "3.2", "http://127.0.0.1:9"], "--export-spec goes alone: no --lint, no URL"),
        (["--export-spec"], "argument --export-spec: expected one argument"),
    ],
    ids=["version", "no-folder", "a-folder", "bad-spec", "output-alone", "with-lint", "with-url", "no-version"],
)
def test_cli_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = contract_check(*(arg.format(tmp=tmp_path) for arg in args))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [f"contract-check: error: {message.format(tmp=tmp_path)}"]
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []
