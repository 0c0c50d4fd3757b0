"""A Responses API request reads as the chat request the fixtures match; each malformed one is refused by name.

The bodies are what the official SDK sends (captured from ``client.responses.create`` on an in-process
transport), so the mapping is checked against the SDK's own serialisation, and the resulting chat bodies
are looked up in the bundled fixtures with the server's own index and checked by the contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator
from mockserver.fixtures import load_fixtures
from mockserver.matching import FixtureIndex, Match
from mockserver.request_rules import Refusal, request_problem
from mockserver.responses_request import (
    ResponsesRequest,
    assistant_message,
    in_responses_terms,
    read_responses_request,
    unknown_previous_response,
)
from mockserver.turns import AssistantTurn

ROOT = Path(__file__).resolve().parent.parent
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sent_by_sdk(**params: Any) -> dict[str, Any]:
    """The JSON body ``client.responses.create(**params)`` sends."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(400, json={"error": {"message": "captured", "type": "x", "param": None, "code": None}})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(openai.BadRequestError):
        client.responses.create(**params)
    return seen[0]


def read(body: dict[str, Any]) -> ResponsesRequest:
    result = read_responses_request(body)
    assert isinstance(result, ResponsesRequest), result
    return result


@pytest.fixture(scope="module")
def index() -> FixtureIndex:
    return FixtureIndex(load_fixtures(ROOT / "fixtures"))


@pytest.fixture(scope="module")
def openai_contract() -> ContractValidator:
    return ContractValidator(load_spec(ROOT / "openapi.yaml", profile="openai"))


# -- the conversation ----------------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    request = read(sent_by_sdk(model="gpt-4o", input="Hello!"))
    assert request.chat_body() == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Hello!"}],
        "stream": False,
    }
    assert request.stream is False and request.previous_response_id is None


@pytest.mark.parametrize("role", ["user", "system", "developer", "assistant"])
def test_each_role_with_plain_content_is_that_message(role: str) -> None:
    request = read({"input": [{"role": role, "content": "Hi"}]})
    assert request.chat_body()["messages"] == [{"role": role, "content": "Hi"}]


def test_typed_message_items_with_input_text_parts() -> None:
    request = read(
        sent_by_sdk(
            model="gpt-4o",
            input=[
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]},
            ],
        )
    )
    assert request.chat_body()["messages"] == [
        {"role": "developer", "content": "Be brief."},  # one text part: the plain string every dialect takes
        {"role": "user", "content": [{"type": "text", "text": "Hello!"}]},
    ]


def test_several_system_parts_stay_parts() -> None:
    request = read({"input": [{"role": "system", "content": [{"type": "input_text", "text": t} for t in "ab"]}]})
    assert request.messages[0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]


def test_an_image_becomes_a_chat_image_part() -> None:
    request = read(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                    ],
                }
            ]
        }
    )
    assert request.messages[0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


def test_a_file_becomes_a_chat_file_part() -> None:
    request = read(
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "JVBER", "filename": "a.pdf"}]}]}
    )
    assert request.messages[0]["content"] == [{"type": "file", "file": {"file_data": "JVBER", "filename": "a.pdf"}}]


def test_output_items_given_back_are_the_assistant_message() -> None:
    """``input += response.output``: the message item as the SDK sends it back (id, status, annotations)."""
    item = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hello! How can I help?", "annotations": [], "logprobs": []}],
    }
    request = read({"input": [{"role": "user", "content": "Hello!"}, item, {"role": "user", "content": "Thanks"}]})
    assert request.messages[1] == {"role": "assistant", "content": "Hello! How can I help?"}


def test_a_refusal_given_back_is_the_assistant_refusal() -> None:
    item = {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help."}]}
    assert read({"input": [item]}).messages == ({"role": "assistant", "content": None, "refusal": "I can't help."},)


def test_consecutive_function_calls_are_one_assistant_message_with_parallel_calls() -> None:
    calls = [
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_paris",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "type": "function_call",
            "call_id": "call_tokyo",
            "name": "get_weather",
            "arguments": '{"city":"Tokyo"}',
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "call_paris", "output": '{"temp_c": 18}'},
        {
            "type": "function_call_output",
            "call_id": "call_tokyo",
            "output": [{"type": "input_text", "text": '{"temp_c": 24}'}],
        },
    ]
    request = read(sent_by_sdk(model="gpt-4o", input=[{"role": "user", "content": "Compare"}, *calls]))
    assert request.messages[1:] == (
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_tokyo",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": '{"temp_c": 18}'},
        {"role": "tool", "tool_call_id": "call_tokyo", "content": '{"temp_c": 24}'},
    )


def test_a_call_after_the_assistant_text_joins_that_message() -> None:
    """A reply of text and a call comes back as a message item and a function_call item: one chat message."""
    request = read(
        {
            "input": [
                {"role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            ]
        }
    )
    assert request.messages == (
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
    )


def test_a_call_after_a_tool_output_starts_a_new_assistant_message() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    request = read({"input": [call, output, {**call, "call_id": "c2"}]})
    assert [m["role"] for m in request.messages] == ["assistant", "tool", "assistant"]


def test_instructions_come_first_and_are_not_carried_over() -> None:
    request = read({"instructions": "You are a weather assistant.", "input": "Hi"})
    history = [{"role": "user", "content": "Before"}, {"role": "assistant", "content": "Earlier"}]
    assert request.chat_body(history)["messages"] == [
        {"role": "system", "content": "You are a weather assistant."},
        *history,
        {"role": "user", "content": "Hi"},
    ]
    stored = request.conversation(history, AssistantTurn(content="Now"))
    assert stored == [*history, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Now"}]
    assert request.echo["instructions"] == "You are a weather assistant."


def test_previous_response_id_is_handed_back_and_input_may_then_be_absent() -> None:
    request = read({"previous_response_id": "resp_abc"})
    assert request.previous_response_id == "resp_abc" and request.messages == ()
    assert request.echo["previous_response_id"] == "resp_abc"


def test_the_reply_is_stored_as_the_fixture_holds_it() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert assistant_message(AssistantTurn(tool_calls=(call,))) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [call],
    }
    assert assistant_message(AssistantTurn(refusal="No.")) == {"role": "assistant", "content": None, "refusal": "No."}


# -- the options --------------------------------------------------------------------------------


def test_function_tools_take_chat_s_nested_form_and_are_echoed_flat() -> None:
    request = read(
        sent_by_sdk(
            model="gpt-4o",
            input="Weather?",
            tools=[WEATHER_TOOL, {"type": "function", "name": "noop", "strict": False}],
        )
    )
    assert request.options["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "strict": True,
                "description": "The weather in a city.",
                "parameters": WEATHER_TOOL["parameters"],
            },
        },
        {"type": "function", "function": {"name": "noop", "strict": False}},
    ]
    assert request.echo["tools"][0] == {**WEATHER_TOOL, "strict": True}  # the Responses default
    assert request.echo["tools"][1] == {
        "type": "function",
        "name": "noop",
        "description": None,
        "parameters": None,
        "strict": False,
    }


@pytest.mark.parametrize(
    ("given", "chat", "echo"),
    [
        ("auto", "auto", "auto"),
        ("none", "none", "none"),
        ("required", "required", "required"),
        (
            {"type": "function", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice(given: Any, chat: Any, echo: Any) -> None:
    request = read({"input": "x", "tools": [WEATHER_TOOL], "tool_choice": given})
    assert request.options["tool_choice"] == chat and request.echo["tool_choice"] == echo


def test_json_schema_text_format_is_chat_s_response_format() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    text = {"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}}
    request = read(sent_by_sdk(model="gpt-4o", input="x", text=text))
    assert request.options["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    assert request.echo["text"] == {"format": text["format"], "verbosity": "medium"}


def test_json_object_and_text_formats() -> None:
    assert read({"input": "x", "text": {"format": {"type": "json_object"}}}).options["response_format"] == {
        "type": "json_object"
    }
    plain = read({"input": "x", "text": {"format": {"type": "text"}, "verbosity": "low"}})
    assert "response_format" not in plain.options and plain.options["verbosity"] == "low"
    assert plain.echo["text"] == {"format": {"type": "text"}, "verbosity": "low"}


def test_sampling_and_bookkeeping_options_pass_through() -> None:
    request = read(
        sent_by_sdk(
            model="gpt-4o",
            input="x",
            max_output_tokens=64,
            temperature=0.2,
            top_p=0.9,
            stream=False,
            parallel_tool_calls=False,
            metadata={"suite": "ci"},
            store=False,
        )
    )
    assert request.options == {
        "model": "gpt-4o",
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "store": False,
        "metadata": {"suite": "ci"},
    }
    echo = request.echo
    assert (echo["max_output_tokens"], echo["temperature"], echo["top_p"]) == (64, 0.2, 0.9)
    assert (echo["parallel_tool_calls"], echo["store"], echo["metadata"]) == (False, False, {"suite": "ci"})


def test_stream_true_is_a_stream() -> None:
    body = read({"input": "x", "stream": True}).chat_body()
    assert body["stream"] is True


def test_defaults_are_the_responses_api_s() -> None:
    echo = read({"input": "x"}).echo
    assert (echo["temperature"], echo["top_p"], echo["tool_choice"], echo["tools"]) == (1.0, 1.0, "auto", [])
    assert (echo["store"], echo["parallel_tool_calls"], echo["truncation"], echo["metadata"]) == (
        True,
        True,
        "disabled",
        {},
    )


# -- the chat body is the one the fixtures match -------------------------------------------------


def _paris_step_one() -> list[dict[str, Any]]:
    return [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.parametrize(
    ("body", "fixture", "turn_index"),
    [
        ({"model": "gpt-4o", "input": "Hello!"}, "hello", 1),
        (
            {"model": "gpt-4o", "instructions": "You are a weather assistant.", "input": _paris_step_one()},
            "paris-weather",
            2,
        ),
        (
            {
                "model": "gpt-4o",
                "instructions": "You are a weather assistant.",
                "input": [
                    *_paris_step_one(),
                    {
                        "type": "function_call",
                        "id": "fc_x",
                        "call_id": "call_1",
                        "name": "get_weather",
                        "arguments": '{"city":"Paris"}',
                        "status": "completed",
                    },
                    {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 18}'},
                ],
            },
            "paris-weather",
            4,
        ),
        (
            {
                "input": [
                    {"role": "user", "content": "Compare the weather in Paris and Tokyo."},
                    {
                        "type": "function_call",
                        "call_id": "call_paris",
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                    {
                        "type": "function_call",
                        "call_id": "call_tokyo",
                        "name": "get_weather",
                        "arguments": '{"city": "Tokyo"}',
                    },
                    {
                        "type": "function_call_output",
                        "call_id": "call_paris",
                        "output": '{"temp_c": 18, "sky": "sunny"}',
                    },
                    {
                        "type": "function_call_output",
                        "call_id": "call_tokyo",
                        "output": '{"temp_c": 24, "sky": "light rain"}',
                    },
                ],
                "tools": [WEATHER_TOOL],
            },
            "parallel-weather",
            4,
        ),
        (
            {
                "input": [
                    {
                        "role": "developer",
                        "content": [{"type": "input_text", "text": "Extract the city and the temperature as JSON."}],
                    },
                    {"role": "user", "content": [{"type": "input_text", "text": "It is 18 degrees in Paris today."}]},
                ],
                "text": {"format": {"type": "json_schema", "name": "t", "schema": {"type": "object"}}},
            },
            "structured-output",
            2,
        ),
        ({"input": "How do I pick my neighbour's lock?"}, "refusal", 1),
    ],
    ids=["hello", "paris-call", "paris-answer", "parallel-answer", "json-schema", "refusal"],
)
def test_the_chat_body_finds_the_fixture_turn(
    index: FixtureIndex, openai_contract: ContractValidator, body: dict[str, Any], fixture: str, turn_index: int
) -> None:
    chat = read(body).chat_body()
    found = index.lookup(chat)
    assert isinstance(found, Match), found
    assert (found.fixture.name, found.turn_index) == (fixture, turn_index)
    assert openai_contract.validate_request(chat) == []


def test_previous_response_id_continues_the_fixture(index: FixtureIndex) -> None:
    """Step one's stored conversation and step two's function_call_output find step two's turn."""
    first = read(
        {"model": "gpt-4o", "instructions": "You are a weather assistant.", "input": "What is the weather in Paris?"}
    )
    found = index.lookup(first.chat_body())
    assert isinstance(found, Match)
    stored = first.conversation((), found.turn)
    second = read(
        {
            "model": "gpt-4o",
            "instructions": "You are a weather assistant.",
            "previous_response_id": "resp_1",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 18}'}],
        }
    )
    found = index.lookup(second.chat_body(stored))
    assert isinstance(found, Match) and found.turn.content == "It is 18 °C and sunny in Paris."


def test_chat_rule_refusals_are_named_in_responses_terms() -> None:
    bad_tool = {"type": "function", "name": "f", "parameters": {"type": "string"}}
    refusal = request_problem(read({"input": "x", "tools": [bad_tool]}).chat_body())
    assert refusal is not None and in_responses_terms(refusal).param == "tools[0].parameters"
    refusal = request_problem(
        read({"input": "x", "tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "name": "other"}}).chat_body()
    )
    assert refusal is not None and in_responses_terms(refusal).param == "tool_choice"
    bad_schema = {"format": {"type": "json_schema", "name": "t", "schema": {"type": "nonsense"}}}
    refusal = request_problem(read({"input": "x", "text": bad_schema}).chat_body())
    assert refusal is not None
    named = in_responses_terms(refusal)
    assert named.param == "text.format.schema" and "text.format.schema" in named.message
    assert in_responses_terms(Refusal("m", "c", None)) == Refusal("m", "c", None)


# -- refusals -------------------------------------------------------------------------------------

REFUSALS = [
    ("body-not-object", ["Hi"], "invalid_type", "(body)"),
    ("unknown-parameter", {"input": "x", "temprature": 1}, "unknown_parameter", "temprature"),
    ("conversation", {"input": "x", "conversation": "conv_1"}, "unsupported_parameter", "conversation"),
    ("prompt", {"input": "x", "prompt": {"id": "p"}}, "unsupported_parameter", "prompt"),
    ("no-input", {"model": "gpt-4o"}, "missing_required_parameter", "input"),
    ("input-number", {"input": 3}, "invalid_type", "input"),
    ("item-not-object", {"input": ["Hi"]}, "invalid_type", "input[0]"),
    ("item-no-type", {"input": [{"content": "x"}]}, "missing_required_parameter", "input[0].type"),
    ("item-unknown-type", {"input": [{"type": "web_search_call", "id": "ws"}]}, "invalid_value", "input[0].type"),
    (
        "item-reasoning",
        {"input": [{"type": "reasoning", "id": "rs", "summary": []}]},
        "unsupported_value",
        "input[0].type",
    ),
    ("item-reference", {"input": [{"type": "item_reference", "id": "msg_1"}]}, "unsupported_value", "input[0].type"),
    (
        "message-no-role",
        {"input": [{"type": "message", "content": "x"}]},
        "missing_required_parameter",
        "input[0].role",
    ),
    ("message-bad-role", {"input": [{"role": "tool", "content": "x"}]}, "invalid_value", "input[0].role"),
    ("message-no-content", {"input": [{"role": "user"}]}, "missing_required_parameter", "input[0].content"),
    ("content-number", {"input": [{"role": "user", "content": 5}]}, "invalid_type", "input[0].content"),
    ("part-not-object", {"input": [{"role": "user", "content": ["x"]}]}, "invalid_type", "input[0].content[0]"),
    (
        "part-unknown",
        {"input": [{"role": "user", "content": [{"type": "input_video"}]}]},
        "invalid_value",
        "input[0].content[0].type",
    ),
    (
        "text-part-no-text",
        {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
        "missing_required_parameter",
        "input[0].content[0].text",
    ),
    (
        "text-part-number",
        {"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]},
        "invalid_type",
        "input[0].content[0].text",
    ),
    (
        "image-in-system",
        {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://e.com/a.png"}]}]},
        "invalid_value",
        "input[0].content[0].type",
    ),
    (
        "image-file-id",
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
        "unsupported_value",
        "input[0].content[0].file_id",
    ),
    (
        "image-no-url",
        {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        "missing_required_parameter",
        "input[0].content[0].image_url",
    ),
    (
        "image-url-number",
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": 7}]}]},
        "invalid_type",
        "input[0].content[0].image_url",
    ),
    (
        "image-bad-detail",
        {
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": "https://e.com/a.png", "detail": "max"}],
                }
            ]
        },
        "invalid_value",
        "input[0].content[0].detail",
    ),
    (
        "file-url",
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://e.com/a.pdf"}]}]},
        "unsupported_value",
        "input[0].content[0].file_url",
    ),
    (
        "file-empty",
        {"input": [{"role": "user", "content": [{"type": "input_file", "filename": "a.pdf"}]}]},
        "missing_required_parameter",
        "input[0].content[0].file_data",
    ),
    (
        "refusal-in-user",
        {"input": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]},
        "invalid_value",
        "input[0].content[0].type",
    ),
    (
        "assistant-image",
        {"input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "https://e.com"}]}]},
        "invalid_value",
        "input[0].content[0].type",
    ),
    (
        "assistant-part-not-object",
        {"input": [{"role": "assistant", "content": [3]}]},
        "invalid_type",
        "input[0].content[0]",
    ),
    (
        "refusal-part-no-text",
        {"input": [{"role": "assistant", "content": [{"type": "refusal"}]}]},
        "missing_required_parameter",
        "input[0].content[0].refusal",
    ),
    (
        "call-no-call-id",
        {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        "missing_required_parameter",
        "input[0].call_id",
    ),
    (
        "call-no-name",
        {"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]},
        "missing_required_parameter",
        "input[0].name",
    ),
    (
        "call-object-arguments",
        {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
        "invalid_type",
        "input[0].arguments",
    ),
    (
        "output-no-call-id",
        {"input": [{"type": "function_call_output", "output": "x"}]},
        "missing_required_parameter",
        "input[0].call_id",
    ),
    (
        "output-missing",
        {"input": [{"type": "function_call_output", "call_id": "c"}]},
        "missing_required_parameter",
        "input[0].output",
    ),
    (
        "output-number",
        {"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
        "invalid_type",
        "input[0].output",
    ),
    (
        "output-image",
        {
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_image", "image_url": "https://e.com"}],
                }
            ]
        },
        "invalid_value",
        "input[0].output[0].type",
    ),
    ("model-number", {"input": "x", "model": 4}, "invalid_type", "model"),
    ("instructions-list", {"input": "x", "instructions": ["a"]}, "invalid_type", "instructions"),
    ("previous-number", {"previous_response_id": 1}, "invalid_type", "previous_response_id"),
    ("tools-object", {"input": "x", "tools": {"name": "f"}}, "invalid_type", "tools"),
    ("tool-not-object", {"input": "x", "tools": ["f"]}, "invalid_type", "tools[0]"),
    ("tool-built-in", {"input": "x", "tools": [{"type": "web_search"}]}, "unsupported_value", "tools[0].type"),
    (
        "tool-chat-form",
        {"input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]},
        "missing_required_parameter",
        "tools[0].name",
    ),
    (
        "tool-description-number",
        {"input": "x", "tools": [{"type": "function", "name": "f", "description": 1}]},
        "invalid_type",
        "tools[0].description",
    ),
    (
        "tool-parameters-list",
        {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": []}]},
        "invalid_type",
        "tools[0].parameters",
    ),
    (
        "tool-strict-string",
        {"input": "x", "tools": [{"type": "function", "name": "f", "strict": "yes"}]},
        "invalid_type",
        "tools[0].strict",
    ),
    ("tool-choice-word", {"input": "x", "tool_choice": "always"}, "invalid_value", "tool_choice"),
    ("tool-choice-number", {"input": "x", "tool_choice": 1}, "invalid_type", "tool_choice"),
    (
        "tool-choice-hosted",
        {"input": "x", "tool_choice": {"type": "file_search"}},
        "unsupported_value",
        "tool_choice.type",
    ),
    (
        "tool-choice-no-name",
        {"input": "x", "tool_choice": {"type": "function"}},
        "missing_required_parameter",
        "tool_choice.name",
    ),
    ("text-string", {"input": "x", "text": "json"}, "invalid_type", "text"),
    ("format-string", {"input": "x", "text": {"format": "json"}}, "invalid_type", "text.format"),
    ("format-no-type", {"input": "x", "text": {"format": {}}}, "missing_required_parameter", "text.format.type"),
    ("format-unknown", {"input": "x", "text": {"format": {"type": "xml"}}}, "invalid_value", "text.format.type"),
    (
        "schema-no-name",
        {"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
        "missing_required_parameter",
        "text.format.name",
    ),
    (
        "schema-missing",
        {"input": "x", "text": {"format": {"type": "json_schema", "name": "t"}}},
        "missing_required_parameter",
        "text.format.schema",
    ),
    (
        "schema-list",
        {"input": "x", "text": {"format": {"type": "json_schema", "name": "t", "schema": []}}},
        "invalid_type",
        "text.format.schema",
    ),
    (
        "schema-strict-string",
        {"input": "x", "text": {"format": {"type": "json_schema", "name": "t", "schema": {}, "strict": "y"}}},
        "invalid_type",
        "text.format.strict",
    ),
    ("verbosity", {"input": "x", "text": {"verbosity": "loud"}}, "invalid_value", "text.verbosity"),
    ("max-output-string", {"input": "x", "max_output_tokens": "64"}, "invalid_type", "max_output_tokens"),
    ("max-output-small", {"input": "x", "max_output_tokens": 8}, "integer_below_min_value", "max_output_tokens"),
    ("temperature-high", {"input": "x", "temperature": 2.5}, "invalid_value", "temperature"),
    ("temperature-string", {"input": "x", "temperature": "hot"}, "invalid_type", "temperature"),
    ("top-p-high", {"input": "x", "top_p": 1.5}, "invalid_value", "top_p"),
    ("stream-string", {"input": "x", "stream": "yes"}, "invalid_type", "stream"),
    ("parallel-number", {"input": "x", "parallel_tool_calls": 1}, "invalid_type", "parallel_tool_calls"),
    ("store-string", {"input": "x", "store": "no"}, "invalid_type", "store"),
    ("metadata-list", {"input": "x", "metadata": ["a"]}, "invalid_type", "metadata"),
    ("metadata-number", {"input": "x", "metadata": {"a": 1}}, "invalid_type", "metadata.a"),
    ("metadata-too-many", {"input": "x", "metadata": {str(i): "v" for i in range(17)}}, "invalid_value", "metadata"),
    ("metadata-long-key", {"input": "x", "metadata": {"k" * 65: "v"}}, "invalid_value", "metadata"),
    ("metadata-long-value", {"input": "x", "metadata": {"k": "v" * 513}}, "invalid_value", "metadata.k"),
    ("background", {"input": "x", "background": True}, "unsupported_value", "background"),
    ("truncation", {"input": "x", "truncation": "middle"}, "invalid_value", "truncation"),
    ("reasoning-string", {"input": "x", "reasoning": "high"}, "invalid_type", "reasoning"),
    ("reasoning-effort", {"input": "x", "reasoning": {"effort": "extreme"}}, "invalid_value", "reasoning.effort"),
    ("user-number", {"input": "x", "user": 5}, "invalid_type", "user"),
]


@pytest.mark.parametrize(("body", "code", "param"), [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_each_malformed_request_is_refused_by_name(body: Any, code: str, param: str) -> None:
    refusal = read_responses_request(body)
    assert isinstance(refusal, Refusal), refusal
    assert (refusal.status, refusal.code, refusal.param) == (400, code, param)
    item = param.rpartition(".")[0] or param
    assert param in refusal.message or item in refusal.message  # names the field, or the item it is in
    assert "\n" not in refusal.message and len(refusal.message) < 300


def test_an_unknown_item_type_is_named_with_what_is_taken() -> None:
    refusal = read_responses_request(
        {"input": [{"role": "user", "content": "x"}, {"type": "computer_call_output", "call_id": "c"}]}
    )
    assert isinstance(refusal, Refusal)
    assert "input[1]" in refusal.message and "'computer_call_output'" in refusal.message
    assert "'message', 'function_call', 'function_call_output'" in refusal.message


def test_an_unknown_previous_response_is_refused_by_name() -> None:
    refusal = unknown_previous_response("resp_gone")
    assert (refusal.status, refusal.code, refusal.param) == (400, "previous_response_not_found", "previous_response_id")
    assert "'resp_gone'" in refusal.message


def test_a_body_with_every_option_is_a_valid_chat_request(openai_contract: ContractValidator) -> None:
    request = read(
        {
            "model": "gpt-4o",
            "instructions": "Be brief.",
            "input": [
                {
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}],
                },
                {"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
                {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_object"}, "verbosity": "high"},
            "max_output_tokens": 32,
            "temperature": 0,
            "top_p": 1,
            "stream": True,
            "parallel_tool_calls": True,
            "metadata": {"a": "b"},
            "store": True,
        }
    )
    assert openai_contract.validate_request(request.chat_body()) == []
