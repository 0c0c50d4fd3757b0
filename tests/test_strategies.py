"""The request strategies: schema-driven and realistic data is valid, negative data breaks exactly one rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator
from contract.negative import NEGATIVE_KINDS, SCHEMA_KINDS, NegativeCase, mutation_sites, negative_requests
from contract.strategies import (
    bounded_schema,
    conversation_requests,
    realistic_applies,
    realistic_requests,
    request_media,
    schema_requests,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "openapi.yaml")
OPERATION = SPEC.operation()
FAST = settings(max_examples=40, deadline=None)

PETS = """
openapi: 3.0.3
info: {title: Pets, version: "1"}
paths:
  /pets:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Pet"}
      responses:
        "201": {description: created}
components:
  schemas:
    Pet:
      type: object
      required: [name, kind]
      properties:
        name: {type: string, minLength: 1}
        kind: {type: string, enum: [cat, dog]}
        age: {type: integer, minimum: 0}
        tags: {type: array, items: {type: string}}
"""


@pytest.fixture(scope="module")
def pets(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("pets") / "pets.yaml"
    path.write_text(PETS)
    return load_spec(path)


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """JSON pointers where two values differ (a changed, added or removed member counts once)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}/{key}")
            else:
                out.extend(_diff(a[key], b[key], f"{path}/{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in _diff(x, y, f"{path}/{i}")]
    return [] if a == b and type(a) is type(b) else [path or "/"]


# -- realistic --------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(conversation_requests())
def test_every_realistic_request_is_valid_against_the_contract(body: dict[str, Any]) -> None:
    assert ContractValidator(SPEC).validate_request(body) == []
    json.dumps(body)  # plain JSON, sendable as is


@FAST
@given(conversation_requests())
def test_realistic_conversations_are_well_formed(body: dict[str, Any]) -> None:
    messages = body["messages"]
    assert messages[-1]["role"] in ("user", "tool")
    assert all(m["role"] != "system" for m in messages[1:])
    offered = {t["function"]["name"] for t in body.get("tools", [])}
    pending: list[str] = []
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] == pending.pop(0)  # answers the calls in order, ids matching
        else:
            assert not pending, "tool calls must be answered before the conversation goes on"
        for call in message.get("tool_calls") or []:
            assert call["function"]["name"] in offered
            json.loads(call["function"]["arguments"])
            pending.append(call["id"])
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        assert choice["function"]["name"] in offered
    if "tool_choice" in body or "parallel_tool_calls" in body:
        assert offered
    for tool in body.get("tools", []):
        parameters = tool["function"]["parameters"]
        assert parameters["type"] == "object" and set(parameters["required"]) == set(parameters["properties"])
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["additionalProperties"] is False and schema["required"]
    if "audio" in body.get("modalities", []):
        assert body["audio"]["voice"]


def test_realistic_requests_cover_the_api() -> None:
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(realistic_requests(SPEC))
    def collect(body: dict[str, Any]) -> None:
        roles = {m["role"] for m in body["messages"]}
        parts = {p["type"] for m in body["messages"] if isinstance(m["content"], list) for p in m["content"]}
        seen.update(f"role:{r}" for r in roles)
        seen.update(f"part:{p}" for p in parts)
        seen.update(f"field:{k}" for k in body)
        choice = body.get("tool_choice")
        seen.add(f"tool_choice:{choice if isinstance(choice, str) else 'named' if choice else 'absent'}")
        seen.add(f"stream:{body.get('stream', 'absent')}")

    collect()
    expected = {
        "role:system",
        "role:user",
        "role:assistant",
        "role:tool",
        "part:text",
        "part:image_url",
        "part:input_audio",
        "field:tools",
        "field:response_format",
        "field:modalities",
        "field:audio",
        "field:parallel_tool_calls",
        "field:ssml_enabled",
        "field:model",
        "tool_choice:auto",
        "tool_choice:none",
        "tool_choice:required",
        "tool_choice:named",
        "tool_choice:absent",
        "stream:True",
        "stream:False",
        "stream:absent",
    }
    assert expected <= seen, expected - seen


def test_realistic_requests_follow_a_stricter_document(seed_path: Path) -> None:
    seed = load_spec(seed_path)
    validator = ContractValidator(seed)

    @settings(max_examples=25, deadline=None)
    @given(realistic_requests(seed))
    def check(body: dict[str, Any]) -> None:
        assert validator.validate_request(body) == []

    check()
    assert realistic_applies(seed) and realistic_applies(SPEC)


# -- schema-driven -----------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(schema_requests(SPEC, OPERATION))
def test_schema_requests_are_valid_and_bounded(body: Any) -> None:
    assert ContractValidator(SPEC).validate_request(body) == []
    assert len(body["messages"]) <= 3


def test_bounds_are_written_into_a_copy_of_the_schema() -> None:
    schema = SPEC.inline(request_media(OPERATION).schema)
    bounded = bounded_schema(schema, max_items=2)
    assert bounded["properties"]["messages"]["maxItems"] == 2
    assert bounded["properties"]["context"]["maxProperties"] == 3
    assert "maxItems" not in schema["properties"]["messages"]


def test_schema_requests_work_for_another_document(pets: Any) -> None:
    operation = pets.operation("/pets", "post")
    validator = ContractValidator(pets)

    @settings(max_examples=15, deadline=None)
    @given(schema_requests(pets, operation))
    def check(body: Any) -> None:
        assert validator.validate_request(body, "/pets") == []

    check()
    assert not realistic_applies(pets, operation)


# -- negative -----------------------------------------------------------------------------------


def _assert_breaks_one_rule(case: NegativeCase, validator: ContractValidator, path: str = "/chat/completions") -> None:
    assert case.kind in NEGATIVE_KINDS, case.broken_rule
    assert "\n" not in case.broken_rule
    if case.kind in SCHEMA_KINDS:
        assert validator.validate_request(case.body, path), case.broken_rule
        assert json.loads(case.raw_body) == case.body and case.content_type == "application/json"
    elif case.kind == "malformed-json":
        assert case.body is None
        with pytest.raises(ValueError):
            json.loads(case.raw_body)
    elif case.kind == "wrong-content-type":
        assert case.content_type != "application/json" and validator.validate_request(case.body, path) == []
        assert json.loads(case.raw_body) == case.body
    else:
        assert case.raw_body == b"" and case.body is None


@FAST
@given(negative_requests(SPEC, OPERATION))
def test_negative_requests_are_rejected_by_the_validator(case: NegativeCase) -> None:
    _assert_breaks_one_rule(case, ContractValidator(SPEC))


def test_negative_requests_cover_every_kind_of_break() -> None:
    rules: list[str] = []

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(negative_requests(SPEC, OPERATION))
    def collect(case: NegativeCase) -> None:
        rules.append(case.broken_rule)

    collect()
    assert {rule.split(":", 1)[0] for rule in rules} == set(NEGATIVE_KINDS)
    assert len(set(rules)) > 15  # many different places, not one favourite


def test_the_rules_named_in_the_contract_are_all_found() -> None:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "modalities": ["text"],
        "tool_choice": "auto",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
        ],
    }
    sites = {
        f"{m.kind}: {m.pointer}: {m.describe}"
        for m in mutation_sites(SPEC.inline(request_media(OPERATION).schema), body)
    }
    for expected in (
        "missing-required: /: required property 'messages' removed",
        "missing-required: /messages/0: required property 'role' removed",
        "missing-required: /messages/0: required property 'content' removed",
        "missing-required: /messages/2: required property 'tool_call_id' removed",
        'wrong-type: /messages: array replaced by string "not-a-number" (allowed: array)',
        'wrong-type: /stream: boolean replaced by string "not-a-number" (allowed: boolean)',
        "wrong-type: /messages/0/content: string replaced by integer 42 (allowed: array, string)",
        'outside-enum: /messages/0/role: "robot" is not one of ["user"]',
        'outside-enum: /modalities/0: "robot" is not one of ["text", "audio"]',
        'outside-enum: /tool_choice: "robot" is not one of ["auto", "none", "required"]',
    ):
        assert expected in sites, expected


@settings(max_examples=30, deadline=None)
@given(conversation_requests(), st.data())
def test_each_mutation_changes_one_place_and_breaks_the_contract(body: dict[str, Any], data: st.DataObject) -> None:
    validator = ContractValidator(SPEC)
    media = request_media(OPERATION)
    sites = mutation_sites(SPEC.inline(media.schema), body)
    assert {s.kind for s in sites} >= {"missing-required", "wrong-type", "outside-enum"}
    mutation = data.draw(st.sampled_from(sites))
    broken = mutation.apply(body)
    assert _diff(body, broken) == [
        mutation.pointer
        if mutation.kind != "missing-required"
        else f"{mutation.pointer.rstrip('/')}/{mutation.describe.split(chr(39))[1]}"
    ]
    if not validator.validate_request(broken):
        # Removing what one branch of an anyOf requires can leave another branch satisfied (an assistant
        # message with tool_calls may leave out content); negative_requests drops such a mutation before
        # it is sent, which test_rules_come_from_the_schema_of_any_document checks.
        assert mutation.kind == "missing-required", mutation


def test_rules_come_from_the_schema_of_any_document(pets: Any) -> None:
    operation = pets.operation("/pets", "post")
    validator = ContractValidator(pets)
    schema = pets.inline(request_media(operation).schema)
    sites = {f"{m.kind}: {m.pointer}: {m.describe}" for m in mutation_sites(schema, {"name": "Rex", "kind": "dog"})}
    # The rules are read off this document's schema, not from a list of chat-completion fields.
    assert "missing-required: /: required property 'name' removed" in sites
    assert 'outside-enum: /kind: "robot" is not one of ["cat", "dog"]' in sites
    assert "wrong-type: /name: string replaced by integer 42 (allowed: string)" in sites
    kinds: set[str] = set()

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(negative_requests(pets, operation))
    def collect(case: NegativeCase) -> None:
        _assert_breaks_one_rule(case, validator, "/pets")
        kinds.add(case.broken_rule.split(":", 1)[0])

    collect()
    # Which rules a run draws depends on Hypothesis's choices; that it draws several schema rules does not.
    assert len(kinds & {"missing-required", "wrong-type", "outside-enum"}) >= 2, kinds


def test_negative_data_on_the_seed(seed_path: Path) -> None:
    seed = load_spec(seed_path)
    validator = ContractValidator(seed)

    @settings(max_examples=25, deadline=None)
    @given(negative_requests(seed))
    def check(case: NegativeCase) -> None:
        _assert_breaks_one_rule(case, validator)

    check()
