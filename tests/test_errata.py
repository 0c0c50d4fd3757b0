"""Each erratum of openapi.yaml against the seed: the seed rejects a real-world instance (or
takes an ambiguous one), the project's contract accepts it; and nothing of the seed is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.core.spec import load_spec
from contract.core.validate import JSON, ContractValidator

ROOT = Path(__file__).resolve().parent.parent
SHARED_SEED = ROOT.parent / "shared" / "seed-openapi.yaml"

WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
CONVERSATION = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        {"role": "assistant", "content": "It is 18 °C and sunny in Paris."},
        {"role": "user", "content": "And tomorrow?"},
    ],
}
HEAD = {"id": "chatcmpl-1", "created": 1700000000, "model": "gpt-4o"}
CHUNK = {
    **HEAD,
    "object": "chat.completion.chunk",
    "usage": None,
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "It"}, "finish_reason": None}],
}
FINAL_CHUNK = {
    **HEAD,
    "object": "chat.completion.chunk",
    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
}
USAGE_CHUNK = {
    **HEAD,
    "object": "chat.completion.chunk",
    "choices": [],
    "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
}
PARALLEL_RESPONSE = {
    **HEAD,
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    WEATHER_CALL,
                    {
                        **WEATHER_CALL,
                        "id": "call_2",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 30, "completion_tokens": 40, "total_tokens": 70},
}
ERROR_BODY = {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "param": None, "code": None}}


@pytest.fixture(scope="module")
def seed(seed_path: Path) -> ContractValidator:
    return ContractValidator(load_spec(seed_path))


def test_multi_turn_conversation(seed, validator):
    assert validator.validate_request(CONVERSATION) == []
    errors = seed.validate_request(CONVERSATION)
    assert {e.path for e in errors} >= {"/messages/0", "/messages/2", "/messages/4"}  # system, both assistant turns


def test_system_message_alone(seed, validator):
    request = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    assert validator.validate_request(request) == []
    [error] = seed.validate_request(request)
    assert "matches 2 branches of oneOf (SystemMessage, AssistantMessage)" in error.message


@pytest.mark.parametrize("chunk", [CHUNK, FINAL_CHUNK, USAGE_CHUNK], ids=["null-fields", "final", "usage-only"])
def test_stream_chunks(seed, validator, chunk):
    assert validator.validate_event(chunk) == []
    # The seed documents no stream, and as its only 200 shape the chunk is refused.
    assert "text/event-stream" in seed.validate_event(chunk)[0].message
    assert seed.validate_response(200, chunk, JSON) != []


def test_chunk_null_fields_are_what_the_seed_refuses(seed):
    paths = {e.path for e in seed.validate_at("#/components/schemas/ChatCompletionChunk", CHUNK)}
    assert paths == {"/usage", "/choices/0/finish_reason"}


def test_parallel_tool_calls_response(seed, validator):
    assert validator.validate_response(200, PARALLEL_RESPONSE, JSON) == []
    # The seed's oneOf takes it, but only as a ChatCompletionChunk (a choice's extra `message` is
    # ignored there): the ambiguity the errata remove. As a response, the seed refuses it.
    assert seed.validate_response(200, PARALLEL_RESPONSE, JSON) == []
    assert seed.is_valid_at("#/components/schemas/ChatCompletionChunk", PARALLEL_RESPONSE)
    paths = {e.path for e in seed.validate_at("#/components/schemas/ChatCompletionResponse", PARALLEL_RESPONSE)}
    assert paths == {"/choices/0/message/content", "/choices/0/message/refusal", "/choices/0/message/tool_calls"}


def test_streamed_tool_call_delta_carries_index(validator):
    delta = {
        **HEAD,
        "object": "chat.completion.chunk",
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {
                    "tool_calls": [
                        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ]
                },
            }
        ],
    }
    assert validator.validate_event(delta) == []
    bad_index = {**delta, "choices": [{**delta["choices"][0], "delta": {"tool_calls": [{"index": "1"}]}}]}
    assert validator.validate_event(bad_index) != []


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_error_bodies(seed, validator, status):
    assert validator.validate_response(status, ERROR_BODY) == []
    assert validator.validate_response(status, {"message": "flat"}) != []
    assert f"status {status} is not documented" in seed.validate_response(status, ERROR_BODY)[0].message


def test_rate_limit_documents_retry_after(validator):
    headers = validator.spec.operation().responses["429"].headers
    assert headers["retry-after"]["schema"]["type"] == "integer"


def test_chunk_and_response_tell_themselves_apart(validator):
    non_stream = {**PARALLEL_RESPONSE}
    for chunk in (CHUNK, FINAL_CHUNK, USAGE_CHUNK):
        assert validator.validate_response(200, chunk, JSON) != []
    assert validator.validate_event(non_stream) != []
    # Without the object tag, the required message / delta still tell them apart.
    untagged_chunk = {k: v for k, v in FINAL_CHUNK.items() if k != "object"}
    assert validator.validate_at("#/components/schemas/ChatCompletionResponse", untagged_chunk) != []


def test_document_is_structurally_valid_openapi(documents):
    """openapi-spec-validator takes the contract: a Media Type object carries no ``description``."""
    from openapi_spec_validator import validate

    seed, main = documents
    validate(main)
    validate(seed)


def test_tool_choice_object_names_a_function(seed, validator):
    named = {"messages": [], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    assert validator.validate_request(named) == []
    for incomplete in ({}, {"type": "function"}, {"function": {"name": "f"}}, {"type": "function", "function": {}}):
        request = {"messages": [], "tool_choice": incomplete}
        assert validator.validate_request(request) != [], incomplete
        assert seed.validate_request(request) == [], incomplete  # the seed took all of these


def test_audio_voice_has_a_documented_default(seed, validator):
    request = {"messages": [], "modalities": ["text", "audio"], "audio": {}}
    assert validator.validate_request(request) == [] and seed.validate_request(request) == []
    voice = validator.spec.raw["components"]["schemas"]["ChatCompletionRequest"]["properties"]["audio"]
    assert voice["properties"]["voice"]["default"] == "alloy"


SDK_TOOL_TURN = {"role": "assistant", "tool_calls": [WEATHER_CALL]}  # model_dump(exclude_none=True)
SDK_TEXT_TURN = {
    "role": "assistant",
    "content": "It is 18 °C.",
    "refusal": None,
    "audio": None,
    "tool_calls": None,
    "function_call": None,
    "annotations": None,
}  # model_dump()


@pytest.mark.parametrize(
    "turn",
    [SDK_TOOL_TURN, SDK_TEXT_TURN, {**SDK_TOOL_TURN, "content": None, "audio": None}],
    ids=["content-absent", "nulls", "content-null-audio-null"],
)
def test_assistant_message_as_the_sdk_returns_it(seed, validator, turn):
    request = {"messages": [{"role": "user", "content": "Weather?"}, turn]}
    assert validator.validate_request(request) == []
    assert seed.validate_request(request) != []


@pytest.mark.parametrize(
    "turn", [{"role": "assistant"}, {"role": "assistant", "tool_calls": None}], ids=["nothing", "tool-calls-null"]
)
def test_assistant_message_still_says_something(validator, turn):
    """``content`` may be left out only beside real tool calls."""
    assert validator.validate_request({"messages": [turn]}) != []


def test_cross_field_refusals_are_listed_on_the_400(validator):
    bad_request = validator.spec.raw["components"]["responses"]["BadRequest"]
    listed = {(r["code"], r["param"]) for r in bad_request["x-refusals"]}
    assert listed == {
        ("invalid_tool_choice", "tool_choice"),
        ("invalid_function_parameters", "tools[].function.parameters"),
        ("invalid_json_schema", "response_format.json_schema.schema"),
        ("unsupported_audio_format", "audio.format"),
        ("too_many_tools", "tools"),
    }


def test_stream_defaults_to_true(seed, validator):
    for spec in (seed.spec, validator.spec):
        assert spec.raw["components"]["schemas"]["ChatCompletionRequest"]["properties"]["stream"]["default"] is True


def test_vendored_seed_is_verbatim(seed_path):
    if not SHARED_SEED.is_file():
        pytest.skip(f"{SHARED_SEED} is not on this machine; the vendored copy cannot be compared")
    assert seed_path.read_bytes() == SHARED_SEED.read_bytes()


# -- nothing of the seed is lost -------------------------------------------------------


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _facts(tree: Any) -> dict[str, set[Any]]:
    """What a reader of the seed relies on, independent of where it sits in the tree."""
    facts: dict[str, set[Any]] = {"property": set(), "default": set(), "text": set(), "ref": set()}
    for key, value in _walk(tree):
        if key == "properties" and isinstance(value, dict):
            facts["property"].update(value)
            facts["default"].update(
                (name, repr(p["default"])) for name, p in value.items() if isinstance(p, dict) and "default" in p
            )
        elif key in ("description", "summary", "title") and isinstance(value, str):
            facts["text"].add(value)
        elif key == "$ref":
            facts["ref"].add(value)
    return facts


@pytest.fixture(scope="module")
def documents(seed_path) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        yaml.safe_load(seed_path.read_text(encoding="utf-8")),
        yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8")),
    )


def test_every_path_and_operation_kept(documents):
    seed, main = documents
    for path, item in seed["paths"].items():
        for method, op in item.items():
            kept = main["paths"][path][method]
            for key, value in op.items():
                if key not in ("responses", "requestBody"):
                    assert kept[key] == value, (path, method, key)
            assert set(op["responses"]) <= set(kept["responses"])


def test_every_schema_kept_with_its_fields(documents):
    seed, main = documents
    main_schemas = main["components"]["schemas"]
    for name, schema in seed["components"]["schemas"].items():
        assert name in main_schemas, name
        was, now = _facts(schema), _facts(main_schemas[name])
        for kind in ("property", "default", "text", "ref"):
            assert was[kind] <= now[kind], (name, kind, was[kind] - now[kind])


def test_every_description_default_and_ref_kept(documents):
    seed, main = documents
    was, now = _facts(seed), _facts(main)
    for kind in was:
        assert was[kind] <= now[kind], (kind, was[kind] - now[kind])
    assert seed["info"] == main["info"]


def test_audio_format_is_documented_with_its_default(seed, validator):
    audio = validator.spec.raw["components"]["schemas"]["ChatCompletionRequest"]["properties"]["audio"]
    assert audio["properties"]["format"] == {"type": "string", "default": "wav"}
    request = {"messages": [], "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "pcm16"}}
    assert validator.validate_request(request) == [] and seed.validate_request(request) == []


@pytest.mark.parametrize(
    "image_url",
    [
        "https://example.com/cat.png",
        {"url": "https://example.com/cat.png"},
        {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
    ],
    ids=["string", "object", "object-with-detail"],
)
def test_image_url_as_a_string_or_as_the_sdk_sends_it(seed, validator, image_url):
    request = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": image_url}],
            }
        ]
    }
    assert validator.validate_request(request) == []
    assert (seed.validate_request(request) == []) == isinstance(image_url, str)
    bad = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"detail": "low"}}]}]}
    assert validator.validate_request(bad) != []
