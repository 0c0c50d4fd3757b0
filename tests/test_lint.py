"""The spec lint: each seed defect found with its location and a witness that really shows
it; nothing at error level on the project's contract; one synthetic document per rule."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator
from contract.lint import Finding, lint_spec
from contract.lint import refusals as lint_refusals
from contract.lint.refusals import ENTRY_POINT_GROUP, entry_point_refusers
from contract.lint.structure import structure_problems

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = "#/components/schemas/ChatCompletionRequest/properties/messages/items/oneOf"
OK_JSON = "#/paths/~1chat~1completions/post/responses/200/content/application~1json"
BRANCHES = ["SystemMessage", "UserMessage", "AssistantMessage", "ToolMessage"]


def schema(name: str) -> str:
    return f"#/components/schemas/{name}"


@pytest.fixture(scope="module")
def seed_validator(seed_path: Path) -> ContractValidator:
    return ContractValidator(load_spec(seed_path))


@pytest.fixture(scope="module")
def seed_findings(seed_validator: ContractValidator) -> list[Finding]:
    return lint_spec(seed_validator.spec)


def only(findings: list[Finding], rule: str, location: str) -> Finding:
    matching = [f for f in findings if f.rule == rule and f.location == location]
    assert len(matching) == 1, f"expected one {rule} at {location}, got:\n" + "\n".join(map(str, findings))
    return matching[0]


def test_seed_system_message_overlaps_assistant(seed_findings, seed_validator):
    finding = only(seed_findings, "oneof-overlap", MESSAGES)
    assert finding.level == "error"
    assert finding.witness["role"] == "system"
    assert seed_validator.is_valid_at(schema("SystemMessage"), finding.witness)
    assert seed_validator.is_valid_at(schema("AssistantMessage"), finding.witness)
    assert seed_validator.validate_at(MESSAGES.removesuffix("/oneOf"), finding.witness)  # so the oneOf rejects it


def test_seed_assistant_message_matches_no_branch(seed_findings, seed_validator):
    finding = only(seed_findings, "unsatisfiable", schema("AssistantMessage") + "/properties/role/enum")
    assert finding.level == "error"
    assert finding.witness["role"] == "assistant"
    for branch in BRANCHES:
        assert not seed_validator.is_valid_at(schema(branch), finding.witness), branch


def test_seed_response_and_chunk_overlap(seed_findings, seed_validator):
    overlap = only(seed_findings, "oneof-overlap", OK_JSON + "/schema/oneOf")
    ambiguous = only(seed_findings, "ambiguous-response", OK_JSON)
    for finding in (overlap, ambiguous):
        assert finding.level == "error"
        assert seed_validator.is_valid_at(schema("ChatCompletionResponse"), finding.witness)
        assert seed_validator.is_valid_at(schema("ChatCompletionChunk"), finding.witness)
    # The ambiguity is shown with a chunk-shaped instance: a streamed delta passes as a response.
    assert "delta" in ambiguous.witness["choices"][0]


@pytest.mark.parametrize("holder", ["AssistantMessage", "ResponseMessage"])
def test_seed_single_tool_call(seed_findings, seed_validator, validator, holder):
    location = schema(holder) + "/properties/tool_calls"
    finding = only(seed_findings, "single-tool-call", location)
    assert finding.level == "error"
    assert len(finding.witness) == 2
    assert seed_validator.validate_at(location, finding.witness)
    assert validator.validate_at(location, finding.witness) == []


NULL_FIELDS = [
    ("AssistantMessage", "content"),
    ("ResponseMessage", "content"),
    ("ResponseMessage", "refusal"),
    ("Choice", "finish_reason"),
    ("DeltaChoice", "finish_reason"),
    ("ChatCompletionChunk", "usage"),
]


def test_seed_null_fields_exactly(seed_findings):
    found = {f.location for f in seed_findings if f.rule == "null-forbidden"}
    assert found == {schema(h) + f"/properties/{field}" for h, field in NULL_FIELDS}


@pytest.mark.parametrize(("holder", "field"), NULL_FIELDS)
def test_seed_null_field(seed_findings, seed_validator, validator, holder, field):
    finding = only(seed_findings, "null-forbidden", schema(holder) + f"/properties/{field}")
    assert finding.witness[field] is None
    assert [e.path for e in seed_validator.validate_at(schema(holder), finding.witness)] == [f"/{field}"]
    assert validator.validate_at(schema(holder) + f"/properties/{field}", None) == []


def test_seed_operation_level_defects(seed_findings):
    responses = "#/paths/~1chat~1completions/post/responses"
    no_errors = only(seed_findings, "no-error-responses", responses)
    stream = only(seed_findings, "stream-not-documented", responses)
    assert no_errors.witness["status"] == 400
    assert stream.witness["stream"] is True and stream.level == "error"


def test_seed_unused_delta_is_a_warning(seed_findings):
    assert only(seed_findings, "unused-schema", schema("Delta")).level == "warning"


def test_every_seed_error_has_a_witness(seed_findings):
    assert all(f.witness is not None for f in seed_findings if f.level == "error")


def test_finding_is_one_line_with_compact_witness(seed_findings):
    line = str(only(seed_findings, "oneof-overlap", MESSAGES))
    assert "\n" not in line
    assert line.startswith("error: oneof-overlap at " + MESSAGES + ": ")
    assert line.endswith('witness: {"role":"system","content":""}')


def test_seed_lint_is_deterministic(seed_path, seed_findings):
    assert lint_spec(load_spec(seed_path)) == seed_findings


def test_project_contract_has_no_error(validator):
    findings = lint_spec(validator.spec)
    assert [str(f) for f in findings if f.level == "error"] == []
    assert [f.location for f in findings] == [schema("Delta")]  # kept verbatim from the seed, unused


# -- one synthetic document per rule ------------------------------------------------

BASE: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "things", "version": "1"},
    "paths": {
        "/things": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resp"}}},
                    },
                    "400": {
                        "description": "bad",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Err"}}},
                    },
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Req": {"type": "object", "properties": {"name": {"type": "string"}}},
            "Resp": {"type": "object", "properties": {"id": {"type": "string"}}},
            "Err": {"type": "object", "properties": {"message": {"type": "string"}}},
        }
    },
}


def lint_document(tmp_path: Path, change) -> list[Finding]:
    document = copy.deepcopy(BASE)
    change(document)
    path = tmp_path / "doc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return lint_spec(load_spec(path))


def schemas(document: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"]


def test_base_document_is_clean(tmp_path):
    assert lint_document(tmp_path, lambda d: None) == []


def test_oneof_overlap_found_by_search(tmp_path):
    """No hand-built instance overlaps here; the seeded hypothesis-jsonschema search must."""
    branches = [{"type": "integer", "minimum": 0}, {"type": "integer", "multipleOf": 7, "minimum": 1}]
    change = lambda d: schemas(d)["Req"]["properties"].update(n={"oneOf": branches})  # noqa: E731
    findings = lint_document(tmp_path, change)
    assert {f.rule for f in findings} == {"oneof-overlap"}
    witness = findings[0].witness
    assert findings[0].location == "#/components/schemas/Req/properties/n/oneOf"
    assert isinstance(witness, int) and witness >= 1 and witness % 7 == 0
    assert lint_document(tmp_path, change)[0].witness == witness  # seeded: the same witness each run


def test_oneof_respects_the_schema_around_it(tmp_path):
    """Both branches accept any string, but the sibling enum leaves none to share: no overlap
    of strings; the overlap found must satisfy the siblings too."""
    node = {
        "type": "object",
        "required": ["k"],
        "properties": {"k": {"enum": ["a"]}},
        "oneOf": [{"properties": {"k": {"type": "string"}}}, {"properties": {"k": {"type": "integer"}}}],
    }
    findings = lint_document(tmp_path, lambda d: schemas(d)["Req"]["properties"].update(n=node))
    assert findings == []


def test_disjoint_oneof_is_clean(tmp_path):
    node = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    assert lint_document(tmp_path, lambda d: schemas(d)["Req"]["properties"].update(n=node)) == []


def test_ambiguous_response(tmp_path):
    def change(d):
        schemas(d)["A"] = {"type": "object", "properties": {"a": {"type": "string"}}}
        schemas(d)["B"] = {"type": "object", "properties": {"b": {"type": "string"}}}
        schemas(d)["Resp"] = {"anyOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}]}

    findings = lint_document(tmp_path, change)
    assert {f.rule for f in findings} == {"ambiguous-response"}
    assert findings[0].location == "#/paths/~1things/post/responses/200/content/application~1json"
    validator = ContractValidator(load_spec(tmp_path / "doc.yaml"))
    assert validator.is_valid_at("#/components/schemas/A", findings[0].witness)
    assert validator.is_valid_at("#/components/schemas/B", findings[0].witness)


@pytest.mark.parametrize(
    ("prop", "also"),
    [
        ({"type": "integer", "enum": ["a", "b"]}, set()),
        ({"type": "string", "enum": []}, {("openapi-structure", "error")}),  # OpenAPI 3.0 wants a non-empty enum
        (
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["x"],
                "properties": {"y": {"type": "string"}},
            },
            set(),
        ),
        ({"type": "object", "required": ["x"], "properties": {"x": {"not": {}}}}, set()),
    ],
    ids=["enum-vs-type", "empty-enum", "required-but-closed", "required-but-never"],
)
def test_unsatisfiable(tmp_path, prop, also):
    findings = lint_document(tmp_path, lambda d: schemas(d)["Req"]["properties"].update(n=prop))
    assert {(f.rule, f.level) for f in findings} == {("unsatisfiable", "error"), *also}


def test_unsatisfiable_tag_named_otherwise(tmp_path):
    def change(d):
        for name, kind in (("CatPet", "cat"), ("DogPet", "fish"), ("BirdPet", "bird")):
            schemas(d)[name] = {
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"type": "string", "enum": [kind]}},
            }
        schemas(d)["Req"]["properties"]["pets"] = {
            "type": "array",
            "items": {"oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in ("CatPet", "DogPet", "BirdPet")]},
        }

    findings = lint_document(tmp_path, change)
    assert {f.rule for f in findings} == {"unsatisfiable"}
    assert findings[0].location == "#/components/schemas/DogPet/properties/kind/enum"
    assert findings[0].witness == {"kind": "dog"}


def test_dangling_ref_in_unused_component(tmp_path):
    findings = lint_document(tmp_path, lambda d: schemas(d).update(Orphan={"$ref": "#/components/schemas/Nowhere"}))
    assert {(f.rule, f.location) for f in findings} == {
        ("dangling-ref", "#/components/schemas/Orphan/$ref"),
        ("unused-schema", "#/components/schemas/Orphan"),
    }


def test_dangling_ref_outside_schemas(tmp_path):
    def change(d):
        d["components"]["responses"] = {
            "Gone": {
                "description": "x",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nowhere"}}},
            }
        }

    findings = lint_document(tmp_path, change)
    assert [(f.rule, f.level) for f in findings] == [("dangling-ref", "error")]
    assert "'#/components/schemas/Nowhere' resolves nowhere" in findings[0].message


def test_unused_schema(tmp_path):
    findings = lint_document(tmp_path, lambda d: schemas(d).update(Extra={"type": "string"}))
    assert [(f.rule, f.level, f.location) for f in findings] == [
        ("unused-schema", "warning", "#/components/schemas/Extra")
    ]


def test_unused_schema_reached_only_from_unused(tmp_path):
    def change(d):
        schemas(d)["Outer"] = {"type": "object", "properties": {"i": {"$ref": "#/components/schemas/Inner"}}}
        schemas(d)["Inner"] = {"type": "string"}

    findings = lint_document(tmp_path, change)
    assert {f.location for f in findings if f.rule == "unused-schema"} == {
        "#/components/schemas/Outer",
        "#/components/schemas/Inner",
    }


def test_single_tool_call(tmp_path):
    call = {"type": "object", "properties": {"id": {"type": "string"}}}
    findings = lint_document(tmp_path, lambda d: schemas(d)["Resp"]["properties"].update(tool_calls=call))
    assert [(f.rule, f.location) for f in findings] == [
        ("single-tool-call", "#/components/schemas/Resp/properties/tool_calls")
    ]
    assert findings[0].witness == [{"id": "call_1"}, {"id": "call_2"}]


def test_null_forbidden(tmp_path):
    findings = lint_document(
        tmp_path, lambda d: schemas(d)["Resp"]["properties"].update(finish_reason={"type": "string"})
    )
    assert [(f.rule, f.location, f.witness) for f in findings] == [
        ("null-forbidden", "#/components/schemas/Resp/properties/finish_reason", {"finish_reason": None})
    ]


def test_null_allowed_is_clean(tmp_path):
    findings = lint_document(
        tmp_path, lambda d: schemas(d)["Resp"]["properties"].update(finish_reason={"type": "string", "nullable": True})
    )
    assert findings == []


def test_stream_not_documented(tmp_path):
    findings = lint_document(tmp_path, lambda d: schemas(d)["Req"]["properties"].update(stream={"type": "boolean"}))
    assert [(f.rule, f.level) for f in findings] == [("stream-not-documented", "error")]
    assert findings[0].witness == {"stream": True}


def test_stream_documented_is_clean(tmp_path):
    def change(d):
        schemas(d)["Req"]["properties"]["stream"] = {"type": "boolean"}
        d["paths"]["/things"]["post"]["responses"]["200"]["content"]["text/event-stream"] = {
            "schema": {"$ref": "#/components/schemas/Resp"}
        }

    assert lint_document(tmp_path, change) == []


def test_no_error_responses(tmp_path):
    def change(d):
        del d["paths"]["/things"]["post"]["responses"]["400"]
        del schemas(d)["Err"]

    findings = lint_document(tmp_path, change)
    assert [(f.rule, f.location) for f in findings] == [("no-error-responses", "#/paths/~1things/post/responses")]


def test_event_stream_item_schema_of_32_is_a_stream(tmp_path):
    """An OpenAPI 3.2 ``itemSchema`` documents the stream; its items are chunks (usage may be null)."""

    def change(d):
        d["openapi"] = "3.2.0"
        schemas(d)["Req"]["properties"]["stream"] = {"type": "boolean"}
        schemas(d)["Piece"] = {"type": "object", "properties": {"usage": {"type": "object"}}}
        d["paths"]["/things"]["post"]["responses"]["200"]["content"]["text/event-stream"] = {
            "itemSchema": {
                "type": "object",
                "properties": {
                    "data": {
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": "#/components/schemas/Piece"},
                    }
                },
            }
        }

    findings = lint_document(tmp_path, change)
    assert [(f.rule, f.location) for f in findings] == [
        ("null-forbidden", "#/components/schemas/Piece/properties/usage")
    ]


# -- openapi-structure: the document checked by openapi-spec-validator first ---------------

CONTRACT = ROOT / "openapi.yaml"
JSON_REPLY = """            application/json:
              schema:
                $ref: "#/components/schemas/ChatCompletionResponse"
"""


def contract_copy(tmp_path: Path, old: str, new: str, name: str = "copy.yaml") -> Path:
    """The project's openapi.yaml with exactly one passage changed."""
    text = CONTRACT.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the contract no longer contains:\n{old}"
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def described_reply(tmp_path: Path) -> Path:
    """The defect the document used to have: a description inside the 200 reply's Media Type object."""
    return contract_copy(
        tmp_path,
        JSON_REPLY,
        JSON_REPLY.replace(
            "              schema:\n", "              description: The whole reply.\n              schema:\n"
        ),
    )


def test_description_in_a_media_type_is_a_structure_error(tmp_path):
    findings = lint_spec(load_spec(described_reply(tmp_path)), refusers=())
    finding = only(findings, "openapi-structure", OK_JSON)
    assert finding.level == "error"
    assert finding.message == "additional property 'description' is not allowed in a Media Type object"
    assert [f.rule for f in findings if f.level == "error"] == ["openapi-structure"]


def test_project_contract_and_seed_are_structurally_valid(validator, seed_findings):
    assert [f for f in lint_spec(validator.spec, refusers=()) if f.rule == "openapi-structure"] == []
    assert [f for f in seed_findings if f.rule == "openapi-structure"] == []  # its defects are all deeper


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.1.0", ["additional property 'description' is not allowed in a Media Type object"]),
        ("3.2.0", []),  # OpenAPI 3.2 gives the Media Type object a description
    ],
)
def test_structure_follows_the_document_version(tmp_path, version, expected):
    def change(d):
        d["openapi"] = version
        d["paths"]["/things"]["post"]["responses"]["200"]["content"]["application/json"]["description"] = "x"

    findings = lint_document(tmp_path, change)
    assert [f.message for f in findings if f.rule == "openapi-structure"] == expected


def test_structure_error_under_a_oneof_names_the_real_reason(tmp_path):
    """A Response object is "a Response or a Reference": the message is about the Response."""
    findings = lint_document(tmp_path, lambda d: d["paths"]["/things"]["post"]["responses"]["200"].pop("description"))
    assert [(f.rule, f.location, f.message) for f in findings] == [
        (
            "openapi-structure",
            "#/paths/~1things/post/responses/200",
            "required property 'description' is missing in a Response object",
        )
    ]


def test_structure_semantic_checks_are_located(tmp_path):
    def change(d):
        schemas(d)["Req"]["properties"]["name"]["default"] = 5
        d["paths"]["/things"]["post"]["operationId"] = "same"
        d["paths"]["/other"] = {"get": {"operationId": "same", "responses": {"200": {"description": "ok"}}}}

    found = {(f.location, f.message) for f in lint_document(tmp_path, change) if f.rule == "openapi-structure"}
    assert found == {
        (
            "#/components/schemas/Req/properties/name/default",
            "the default value does not fit its schema: expected string, got integer 5",
        ),
        # the document is written with sorted keys: /other comes first, so /things repeats its id
        ("#/paths/~1things/post", "Operation ID 'same' for 'post' in '/things' is not unique"),
    }


def test_unquoted_status_codes_are_fine():
    """YAML reads ``200:`` as a number; as JSON would, the check takes it as the string "200"."""
    document = copy.deepcopy(BASE)
    responses = document["paths"]["/things"]["post"]["responses"]
    responses[200] = responses.pop("200")
    assert structure_problems(document, "3.0.3") == []


# -- undocumented-refusal: refusals of schema-valid requests the document does not list -----

BAD_REQUEST = "#/components/responses/BadRequest"
NAMED_CHOICE = """            - type: object
              required: [type, function]
              properties:
                type:
                  type: string
                  enum: [function]
                function:
                  type: object
                  required: [name]
                  properties:
                    name:
                      type: string
"""
X_REFUSALS_START = "      x-refusals:\n"


@dataclass(frozen=True)
class Refusal:
    code: str | None
    param: str | None
    message: str = "refused"


def refusals(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == "undocumented-refusal"]


def without_x_refusals(tmp_path: Path, enum: str = "[auto, none, required]") -> Path:
    text = CONTRACT.read_text(encoding="utf-8")
    start = text.index(X_REFUSALS_START)
    end = text.index("      content:\n", start)
    text = text[:start] + text[end:]
    assert text.count(f"enum: {'[auto, none, required]'}") == 1
    path = tmp_path / "no-refusals.yaml"
    path.write_text(text.replace("enum: [auto, none, required]", f"enum: {enum}"), encoding="utf-8")
    return path


def test_the_mock_refuser_is_installed():
    assert "mockserver" in entry_point_refusers()


def test_project_contract_lists_every_refusal_of_the_mock(validator):
    """With the installed refusers (the mock's), every refusal of a valid request is documented."""
    assert refusals(lint_spec(validator.spec)) == []


def test_tool_choice_object_without_required_is_refused_undocumented(tmp_path):
    """The seed's tool_choice object: {} is schema-valid, but a server needs the function's name."""
    loose = NAMED_CHOICE.replace("              required: [type, function]\n", "").replace(
        "                  required: [name]\n                  properties:\n"
        "                    name:\n                      type: string\n",
        "",
    )
    path = contract_copy(tmp_path, NAMED_CHOICE, loose)
    findings = refusals(lint_spec(load_spec(path)))
    assert [(f.level, f.location) for f in findings] == [("warning", BAD_REQUEST)]
    finding = findings[0]
    assert "'invalid_tool_choice'" in finding.message and "'tool_choice.function.name'" in finding.message
    assert finding.witness == {"messages": [], "tool_choice": {}}
    assert ContractValidator(load_spec(path)).validate_request(finding.witness) == []


def test_refusals_not_listed_are_reported(tmp_path):
    findings = refusals(lint_spec(load_spec(without_x_refusals(tmp_path))))
    assert len(findings) == 1
    assert "code 'invalid_tool_choice', param 'tool_choice' (" in findings[0].message
    assert findings[0].witness == {"messages": [], "tool_choice": "required"}  # the smallest of those refused


def test_a_named_tool_choice_without_tools_is_reported(tmp_path):
    """Without ``required`` among the string choices, only naming a function no tool offers is left."""
    findings = refusals(lint_spec(load_spec(without_x_refusals(tmp_path, enum="[auto, none]"))))
    assert len(findings) == 1 and "code 'invalid_tool_choice', param 'tool_choice' (" in findings[0].message
    assert findings[0].witness["tool_choice"]["function"]["name"] == ""
    assert not findings[0].witness.get("tools")


def test_a_refuser_that_raises_is_a_warning(validator):
    def broken(body):
        raise ValueError("no idea")

    findings = refusals(lint_spec(validator.spec, refusers={"broken": broken}))
    assert [(f.level, f.location) for f in findings] == [("warning", BAD_REQUEST)]
    assert "refuser 'broken' failed on the witness (ValueError: no idea)" in findings[0].message
    assert findings[0].witness == {"messages": []}


def test_a_refuser_that_answers_nonsense_is_a_warning(validator):
    findings = refusals(lint_spec(validator.spec, refusers={"odd": lambda body: "no"}))
    assert len(findings) == 1 and "refuser 'odd' failed" in findings[0].message


def test_an_entry_point_that_cannot_load_is_a_warning(validator, monkeypatch):
    point = EntryPoint("gone", "no_such_module_here:check", ENTRY_POINT_GROUP)
    monkeypatch.setattr(lint_refusals, "entry_points", lambda group: [point] if group == ENTRY_POINT_GROUP else [])
    findings = refusals(lint_spec(validator.spec))
    assert len(findings) == 1
    assert (
        "refuser 'gone' failed on the witness (ImportError: cannot load no_such_module_here:check"
        in findings[0].message
    )


def test_no_refusers_no_findings(seed_path, tmp_path):
    assert refusals(lint_spec(load_spec(without_x_refusals(tmp_path)), refusers=())) == []
    assert refusals(lint_spec(load_spec(seed_path), refusers=[])) == []


def test_list_indexes_do_not_matter(validator):
    """x-refusals names ``tools[].function.parameters``; a refusal at ``tools[0]...`` is that one."""

    def check(param):
        return lambda body: Refusal("invalid_function_parameters", param) if body.get("tools") else None

    documented = {"a": check("tools[0].function.parameters")}
    assert refusals(lint_spec(validator.spec, refusers=documented)) == []
    other = refusals(lint_spec(validator.spec, refusers={"a": check("tools[0].function.name")}))
    assert len(other) == 1 and "param 'tools[0].function.name'" in other[0].message


def test_each_refusal_once_with_the_smallest_witness(validator):
    """Every body with a model is refused; the finding shows the smallest such body."""
    refuser = {"picky": lambda body: Refusal("model_not_found", "model", "no such model") if "model" in body else None}
    findings = refusals(lint_spec(validator.spec, refusers=refuser))
    assert len(findings) == 1
    assert findings[0].witness == {"messages": [], "model": ""}
    assert "picky refuses" in findings[0].message and "(no such model)" in findings[0].message


def test_the_search_finds_what_hand_built_bodies_miss(tmp_path):
    """Hand-built bodies use the empty name; only the seeded search reaches a long one."""

    def lint(path: Path) -> list[Finding]:
        def long_name(body):  # a new function each time, so no answer is remembered from the last lint
            name = body.get("name")
            return Refusal("name_too_long", "name") if isinstance(name, str) and len(name) >= 3 else None

        return refusals(lint_spec(load_spec(path), refusers=[long_name]))

    lint_document(tmp_path, lambda d: None)
    findings = lint(tmp_path / "doc.yaml")
    assert [f.location for f in findings] == ["#/paths/~1things/post/responses/400"]
    assert len(findings[0].witness["name"]) == 3  # shrunk
    assert "code 'name_too_long'" in findings[0].message and "long_name refuses" in findings[0].message
    assert lint(tmp_path / "doc.yaml") == findings  # seeded: the same witness each run


def test_without_a_400_the_refusal_is_reported_at_the_request_body(tmp_path):
    def change(d):
        del d["paths"]["/things"]["post"]["responses"]["400"]
        d["paths"]["/things"]["post"]["responses"]["default"] = {"description": "error"}

    lint_document(tmp_path, change)
    findings = refusals(lint_spec(load_spec(tmp_path / "doc.yaml"), refusers={"all": lambda body: Refusal("no", None)}))
    assert [f.location for f in findings] == ["#/paths/~1things/post/requestBody/content/application~1json/schema"]
    assert "document a 400 response" in findings[0].message
