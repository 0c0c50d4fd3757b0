"""The validator's error messages: where in the instance, what is wrong in one short line,
and which schema said so, following $ref jumps into the components."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.core.spec import load_spec
from contract.core.validate import EVENT_STREAM, ContractValidator, format_errors, json_type, short_json

REQUEST = "#/components/schemas/ChatCompletionRequest"
MESSAGES_ONEOF = REQUEST + "/properties/messages/items/oneOf"
HI = [{"role": "user", "content": "Hi"}]


def test_wrong_type_has_path_message_and_schema_location(validator):
    [error] = validator.validate_request({"messages": HI, "stream": "yes"})
    assert error.path == "/stream"
    assert error.message == 'expected boolean, got string "yes"'
    assert error.schema_location == REQUEST + "/properties/stream/type"
    assert str(error) == f'/stream: expected boolean, got string "yes" (schema {REQUEST}/properties/stream/type)'


def test_location_follows_refs_into_components(validator):
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": 5}, "finish_reason": None}],
    }
    [error] = validator.validate_event(chunk)
    assert error.path == "/choices/0/delta/content"
    assert error.message == "expected string or null, got integer 5"
    assert error.schema_location == "#/components/schemas/ResponseMessage/properties/content/type"


def test_missing_required(validator):
    [error] = validator.validate_request({"stream": True})
    assert (error.path, error.message, error.schema_location) == ("", "'messages' is required", REQUEST + "/required")
    assert str(error).startswith("/: 'messages' is required")


def test_enum_message(validator):
    request = {"messages": HI, "modalities": ["text", "video"]}
    [error] = validator.validate_request(request)
    assert error.path == "/modalities/1"
    assert error.message == '"video" is not one of ["text", "audio"]'
    assert error.schema_location == REQUEST + "/properties/modalities/items/enum"


def test_oneof_names_the_closest_branch_and_the_inner_path(validator):
    request = {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}
    [error] = validator.validate_request(request)
    assert error.path == "/messages/0"
    assert error.schema_location == MESSAGES_ONEOF
    assert error.message == (
        "matches no branch of oneOf (SystemMessage, UserMessage, AssistantMessage, "
        "ToolMessage); closest is UserMessage at /content/0/text: expected string, got integer 3"
    )


def test_oneof_closest_branch_by_tag(validator):
    [error] = validator.validate_request({"messages": [{"role": "tool", "content": "42"}]})
    assert error.message.endswith("closest is ToolMessage: 'tool_call_id' is required")


def test_ambiguous_oneof_on_the_seed(seed_path: Path):
    seed = ContractValidator(load_spec(seed_path))
    [error] = seed.validate_request({"messages": [{"role": "system", "content": "Be brief."}]})
    assert error.path == "/messages/0"
    assert error.message == (
        '{"role": "system", "content": "Be brief."} matches 2 branches of oneOf '
        "(SystemMessage, AssistantMessage); exactly one must match"
    )
    assert error.schema_location == MESSAGES_ONEOF


def test_several_errors_all_reported_in_path_order(validator):
    request = {"model": 4, "messages": HI, "stream": "no", "parallel_tool_calls": "yes", "tools": {}}
    errors = validator.validate_request(request)
    assert [e.path for e in errors] == ["/model", "/parallel_tool_calls", "/stream", "/tools"]
    assert all("\n" not in str(e) for e in errors)
    assert format_errors(errors).count("\n") == 3


def test_undocumented_status(validator):
    [error] = validator.validate_response(418, {})
    assert error.message == "status 418 is not documented (documented: 200, 400, 401, 404, 429, 500, 503)"
    assert error.schema_location == "#/paths/~1chat~1completions/post/responses"


def test_undocumented_content_types(validator):
    [response] = validator.validate_response(200, {}, "text/plain")
    assert response.message.startswith("content type 'text/plain' is not documented for status 200")
    assert response.schema_location.endswith("/responses/200/content")
    [request] = validator.validate_request({"messages": HI}, media_type="application/x-www-form-urlencoded")
    assert "is not documented for the request body (documented: application/json)" in request.message


@pytest.mark.parametrize("media_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
def test_content_type_parameters_and_case_are_ignored(validator, media_type):
    errors = validator.validate_response(200, {}, media_type)
    assert errors and all(e.schema_location.endswith("ChatCompletionResponse/required") for e in errors)


def test_event_uses_the_stream_schema(validator):
    errors = validator.validate_response(200, {"object": "chat.completion"}, EVENT_STREAM)
    assert any(e.path == "/object" and "chat.completion.chunk" in e.message for e in errors)


def test_validate_at_any_pointer(validator):
    assert validator.validate_at("#/components/schemas/Usage", {"total_tokens": 3}) == []
    [error] = validator.validate_at("#/components/schemas/Usage", {"total_tokens": 1.5})
    assert error.schema_location == "#/components/schemas/Usage/properties/total_tokens/type"


def test_long_values_are_cut_to_one_short_line(validator):
    [error] = validator.validate_request({"messages": HI, "model": ["x" * 500]})
    assert len(str(error)) < 200 and "…" in error.message


def test_helpers():
    assert [json_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null",
        "boolean",
        "integer",
        "number",
        "string",
        "array",
        "object",
    ]
    assert short_json("x" * 100, limit=10) == '"xxxxxxxx…'


def test_the_compiled_verdict_agrees_and_jsonschema_still_words_the_errors(validator) -> None:
    """jsonschema-rs decides; a rejected instance gets jsonschema's one-line errors, the same as before."""
    import time

    pytest.importorskip("jsonschema_rs")
    many = {"messages": [{"role": "user", "content": "hello"}] * 10_000}
    started = time.perf_counter()
    assert validator.validate_request(many) == []
    assert time.perf_counter() - started < 1.0  # jsonschema alone takes seconds on a loaded machine
    broken = {"messages": [{"role": "user", "content": "hello"}] * 9_999 + [{"role": "robot", "content": "x"}]}
    [error] = validator.validate_request(broken)
    assert error.path == "/messages/9999"
    for instance in ({"messages": []}, {"messages": 5}, {"stream": "yes", "messages": []}, {}):
        pointer = validator.spec.operation().request_body["application/json"].pointer
        assert (
            validator.is_valid_at(pointer, instance)
            == (validator.validate_at(pointer, instance) == [])
            == validator._validator(pointer).is_valid(instance)
        )
