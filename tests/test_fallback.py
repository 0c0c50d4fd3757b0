"""The fallback reply: obeys the request like a real model, refuses like a real server, never crashes."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_helpers import MockServers, RunningMock

from contract.core.schema_instances import Hints, SchemaProblem, build_instance
from contract.core.spec import load_spec
from contract.core.sse import SSEEvent, parse_stream
from contract.strategies import schema_requests
from mockserver.fallback import fallback_turn
from mockserver.request_rules import Refusal, shape_for_modalities, turn_mismatch
from mockserver.turns import AssistantTurn

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["city"],
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        },
    },
}
BOOK_FLIGHT = {
    "type": "function",
    "function": {
        "name": "book_flight",
        "parameters": {
            "type": "object",
            "required": ["passengers", "departure", "cabin"],
            "$defs": {
                "passenger": {
                    "type": "object",
                    "required": ["name", "age"],
                    "properties": {
                        "name": {"type": "string", "minLength": 2},
                        "age": {"type": "integer", "minimum": 0, "maximum": 120},
                        "email": {"type": ["string", "null"], "format": "email"},
                    },
                }
            },
            "properties": {
                "passengers": {"type": "array", "items": {"$ref": "#/$defs/passenger"}, "minItems": 1, "maxItems": 4},
                "departure": {"type": "string", "format": "date-time"},
                "cabin": {"anyOf": [{"const": "economy"}, {"const": "business"}]},
                "budget": {"type": "number", "exclusiveMinimum": 0, "maximum": 5000, "multipleOf": 0.5},
                "flight_code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3,4}$"},
            },
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}},
}
NO_ARGS = {"type": "function", "function": {"name": "ping"}}
TOOLS = [WEATHER, BOOK_FLIGHT, TIME, NO_ARGS]
PARAMETERS = {tool["function"]["name"]: tool["function"].get("parameters") for tool in TOOLS}


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def check_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments parse as a JSON object valid against the offered tool's parameters."""
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments, dict)
    schema = PARAMETERS[call["function"]["name"]]
    if schema is not None:
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        assert list(validator.iter_errors(arguments)) == [], arguments
    assert call["id"].startswith("call_") and call["type"] == "function"
    return arguments


# -- tool calls ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["get_weather", "book_flight", "get_time", "ping"])
def test_named_tool_choice_calls_that_tool_with_valid_arguments(name):
    for seed in range(4):
        turn = fallback_turn(ask("Please help me plan.", tools=TOOLS, tool_choice=named(name)), seed)
        assert isinstance(turn, AssistantTurn) and turn.content is None
        assert [c["function"]["name"] for c in turn.tool_calls] == [name]
        check_arguments(turn.tool_calls[0])
        assert turn.effective_finish_reason == "tool_calls"


def test_required_picks_among_several_tools_one_or_two_calls():
    counts, names = set(), set()
    for seed in range(20):
        turn = fallback_turn(ask("Do something useful.", tools=TOOLS, tool_choice="required"), seed)
        assert isinstance(turn, AssistantTurn)
        called = [c["function"]["name"] for c in turn.tool_calls]
        assert len(called) == len(set(called)), called  # parallel calls go to different tools
        assert set(called) <= set(PARAMETERS)
        for call in turn.tool_calls:
            check_arguments(call)
        counts.add(len(called))
        names.update(called)
    assert counts == {1, 2}
    assert len(names) >= 3  # the seed spreads the choice over the offered tools


def test_parallel_tool_calls_false_makes_exactly_one_call():
    for seed in range(15):
        body = ask("Do something useful.", tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
        turn = fallback_turn(body, seed)
        assert isinstance(turn, AssistantTurn) and len(turn.tool_calls) == 1
        check_arguments(turn.tool_calls[0])


def test_auto_calls_the_tool_the_message_asks_for_with_its_words():
    turn = fallback_turn(ask("What is the weather in Lisbon right now?", tools=TOOLS), 3)
    assert isinstance(turn, AssistantTurn)
    assert [c["function"]["name"] for c in turn.tool_calls] == ["get_weather"]
    assert check_arguments(turn.tool_calls[0])["city"] == "Lisbon"


def test_auto_without_a_matching_tool_and_none_answer_in_text():
    unrelated = fallback_turn(ask("Tell me a fun fact about octopuses.", tools=TOOLS), 1)
    assert isinstance(unrelated, AssistantTurn) and not unrelated.tool_calls and "octopuses" in unrelated.content
    for seed in range(5):
        forbidden = fallback_turn(ask("What is the weather in Paris?", tools=TOOLS, tool_choice="none"), seed)
        assert isinstance(forbidden, AssistantTurn) and not forbidden.tool_calls and forbidden.content


def test_answer_after_a_tool_result_uses_its_content():
    body = {
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"temp_c": 18, "sky": "sunny"}'},
        ],
        "tools": [WEATHER],
    }
    turn = fallback_turn(body, 0)
    assert isinstance(turn, AssistantTurn) and not turn.tool_calls
    assert "get_weather" in turn.content and "18" in turn.content and "sunny" in turn.content


# -- refusals -------------------------------------------------------------------------------------


def test_tool_choice_naming_an_unoffered_tool_is_refused_naming_both():
    refusal = fallback_turn(ask("Hi", tools=[WEATHER, TIME], tool_choice=named("get_stock_price")), 0)
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.param, refusal.code) == (400, "tool_choice", "invalid_tool_choice")
    for name in ("get_stock_price", "get_weather", "get_time"):
        assert name in refusal.message


@pytest.mark.parametrize(
    "body, param",
    [
        (ask("Hi", tool_choice="required"), "tool_choice"),
        (ask("Hi", tools=[], tool_choice="required"), "tool_choice"),
        (ask("Hi", tools=[WEATHER], tool_choice={"type": "function"}), "tool_choice.function.name"),
        (ask("Hi", tool_choice=named("get_weather")), "tool_choice"),
    ],
)
def test_tool_choice_that_cannot_be_met_is_refused(body, param):
    refusal = fallback_turn(body, 0)
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.param, refusal.code) == (400, param, "invalid_tool_choice")


@pytest.mark.parametrize(
    "tool, choice",
    [
        ({"type": "function", "function": {"name": ""}}, named("")),
        ({"type": "function", "function": {"name": ""}}, "required"),
        ({"type": "function"}, "required"),
    ],
    ids=["named-empty", "required-empty-name", "required-no-function"],
)
def test_tool_choice_met_only_by_a_tool_without_a_name_is_refused(tool, choice):
    """Schema-valid, and offered as far as the request goes, but no call can carry an empty name."""
    refusal = fallback_turn(ask("Hi", tools=[tool], tool_choice=choice), 0)
    assert isinstance(refusal, Refusal), refusal
    assert (refusal.status, refusal.param, refusal.code) == (400, "tool_choice", "invalid_tool_choice")


@pytest.mark.parametrize(
    "parameters, why",
    [
        ({"type": "object", "properties": {"n": {"type": "integer", "minimum": "one"}}}, "is not of type"),
        ({"type": "string"}, "must describe an object"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "resolves nowhere"),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}, "outside the schema"),
    ],
)
def test_invalid_function_parameters_are_refused(parameters, why):
    broken = {"type": "function", "function": {"name": "broken", "parameters": parameters}}
    refusal = fallback_turn(ask("Hi", tools=[WEATHER, broken]), 0)  # checked even when not called
    assert isinstance(refusal, Refusal) and refusal.status == 400
    assert (refusal.param, refusal.code) == ("tools[1].function.parameters", "invalid_function_parameters")
    assert why in refusal.message and "broken" in refusal.message


def test_unsatisfiable_parameters_are_refused_when_called():
    impossible = {
        "type": "function",
        "function": {
            "name": "impossible",
            "parameters": {
                "type": "object",
                "required": ["n"],
                "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 1}},
            },
        },
    }
    refusal = fallback_turn(ask("Hi", tools=[impossible], tool_choice="required"), 0)
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.param) == (400, "tools[0].function.parameters")
    assert "no value satisfies" in refusal.message


def test_audio_without_a_voice_gets_the_documented_default():
    """The contract gives audio.voice the default ``alloy``, so a request without one is answered."""
    for audio in (None, {}, {"voice": ""}):
        body = ask("Say hi", modalities=["text", "audio"], **({"audio": audio} if audio is not None else {}))
        turn = fallback_turn(body, 0)
        assert not isinstance(turn, Refusal), turn
        spoken = shape_for_modalities(turn, body, seed=0)
        assert spoken.audio is not None and spoken.audio.transcript and spoken.content is None


# -- structured and spoken replies ------------------------------------------------------------------

RESPONSE_SCHEMAS = [
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "year", "authors"],
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer", "minimum": 1450, "maximum": 2030},
            "authors": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        },
    },
    {
        "type": "object",
        "required": ["order"],
        "$defs": {
            "line": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            }
        },
        "properties": {
            "order": {"type": "array", "minItems": 2, "uniqueItems": True, "items": {"$ref": "#/$defs/line"}},
            "status": {"enum": ["open", "shipped"]},
            "note": {"type": ["string", "null"]},
        },
    },
    {
        "type": "object",
        "required": ["code", "ratio"],
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "ratio": {"oneOf": [{"type": "integer", "multipleOf": 7}, {"type": "string", "format": "uuid"}]},
        },
    },
    {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}}}, "maxItems": 2},
]


@pytest.mark.parametrize("schema", RESPONSE_SCHEMAS)
def test_json_schema_content_validates_against_the_requested_schema(schema):
    for seed in range(3):
        body = ask(
            "Describe it as JSON.",
            response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}},
        )
        turn = fallback_turn(body, seed)
        assert isinstance(turn, AssistantTurn) and not turn.tool_calls
        value = json.loads(turn.content)
        assert turn.content == json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # compact JSON
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        assert list(validator.iter_errors(value)) == []


def test_json_schema_without_a_schema_gets_a_json_object():
    turn = fallback_turn(ask("Summarise the news about volcanoes.", response_format={"type": "json_schema"}), 2)
    assert isinstance(turn, AssistantTurn)
    assert "volcanoes" in json.loads(turn.content)["answer"]


def test_invalid_response_schema_is_refused():
    body = ask(
        "JSON please",
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objet"}}},
    )
    refusal = fallback_turn(body, 0)
    assert isinstance(refusal, Refusal) and refusal.status == 400
    assert (refusal.param, refusal.code) == ("response_format.json_schema.schema", "invalid_json_schema")


def test_audio_reply_is_a_wav_with_the_text_as_transcript():
    body = ask(
        "Tell me about the tides in Brittany.", modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"}
    )
    turn = fallback_turn(body, 5)
    assert isinstance(turn, AssistantTurn) and turn.content and "Brittany" in turn.content
    shaped = shape_for_modalities(turn, body, 5)  # what the server does to every reply, fixture or fallback
    assert shaped.audio is not None and shaped.audio.transcript == turn.content and shaped.content is None
    with wave.open(io.BytesIO(shaped.audio.wav)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
    assert 0.5 <= seconds <= 30


# -- plain text and determinism ---------------------------------------------------------------------


def test_plain_answer_mentions_the_users_words():
    turn = fallback_turn(ask("How long should I proof sourdough bread in a cold kitchen?"), 11)
    assert isinstance(turn, AssistantTurn) and not turn.tool_calls and turn.audio is None
    assert any(word in turn.content for word in ("sourdough", "bread", "kitchen", "proof", "cold"))
    assert 2 <= turn.content.count(".") + turn.content.count("?") + turn.content.count("!") <= 6


def test_same_seed_same_turn_other_seeds_other_text():
    body = ask("Any tips for learning the cello as an adult?")
    assert fallback_turn(body, 42) == fallback_turn(body, 42)
    assert len({fallback_turn(body, seed).content for seed in range(6)}) >= 4
    calls = ask("Hi", tools=TOOLS, tool_choice=named("book_flight"))
    assert fallback_turn(calls, 7) == fallback_turn(calls, 7)


# -- properties -------------------------------------------------------------------------------------

SPEC = load_spec()
REQUESTS = schema_requests(SPEC, SPEC.operation())  # the request schema, bounded; drawn with reused_strategies


@pytest.mark.usefixtures("reused_strategies")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.nested_given,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(body=REQUESTS, seed=st.integers(0, 2**32 - 1))
def test_any_schema_valid_request_gets_a_turn_or_a_4xx_refusal(body, seed, validator):
    assert validator.validate_request(body) == []
    result = fallback_turn(body, seed)
    if isinstance(result, Refusal):
        assert 400 <= result.status < 500 and result.message and result.param
        return
    assert isinstance(result, AssistantTurn)
    assert result.content is not None or result.tool_calls
    if body.get("tool_choice") == "none":
        assert not result.tool_calls
    for call in result.tool_calls:
        assert isinstance(json.loads(call["function"]["arguments"]), dict)


def _parameter_schemas() -> st.SearchStrategy[dict[str, Any]]:
    """Object schemas of the kind people write for tools: typed, bounded, enumerated, nested, nullable."""
    names = st.sampled_from(["city", "query", "limit", "when", "tags", "price", "email", "id", "options", "x"])
    leaves = st.one_of(
        st.builds(
            lambda lo, span: {"type": "string", "minLength": lo, "maxLength": lo + span},
            st.integers(0, 5),
            st.integers(0, 20),
        ),
        st.sampled_from([{"type": "string", "format": f} for f in ("date-time", "date", "email", "uri", "uuid")]),
        st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True).map(
            lambda values: {"type": "string", "enum": values}
        ),
        st.builds(
            lambda lo, span, step: {
                "type": "integer",
                "minimum": lo,
                "maximum": lo + span,
                **({"multipleOf": step} if step else {}),
            },
            st.integers(-50, 50),
            st.integers(10, 100),
            st.sampled_from([None, 2, 5]),
        ),
        st.builds(lambda hi: {"type": "number", "exclusiveMinimum": 0, "maximum": hi}, st.integers(1, 1000)),
        st.just({"type": "boolean"}),
        st.just({"type": ["string", "null"]}),
    )
    values = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda item, lo: {"type": "array", "items": item, "minItems": lo}, inner, st.integers(0, 3)),
            st.dictionaries(names, inner, min_size=1, max_size=3).map(
                lambda props: {"type": "object", "properties": props, "required": sorted(props)[:1]}
            ),
            st.lists(inner, min_size=2, max_size=3).map(lambda branches: {"anyOf": branches}),
        ),
        max_leaves=6,
    )
    return st.dictionaries(names, values, min_size=0, max_size=5).flatmap(
        lambda props: (
            st.lists(st.sampled_from(sorted(props)), unique=True).map(
                lambda required: {"type": "object", "properties": props, "required": required}
            )
            if props
            else st.just({"type": "object"})
        )
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.nested_given, HealthCheck.too_slow])
@given(schema=_parameter_schemas(), seed=st.integers(0, 2**32 - 1))
def test_built_arguments_validate_against_realistic_parameter_schemas(schema, seed):
    try:
        value = build_instance(
            schema, seed, Hints(words=("weather", "Paris"), proper_nouns=("Paris",)), want_object=True
        )
    except SchemaProblem:
        pytest.fail(f"a satisfiable schema was declared unsatisfiable: {schema}")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert list(validator.iter_errors(value)) == []
    assert build_instance(schema, seed, want_object=True) == build_instance(schema, seed, want_object=True)


def _realistic_requests() -> st.SearchStrategy[dict[str, Any]]:
    """Requests as clients send them: a conversation, tools with real parameters, and the options that constrain."""
    tool = st.builds(
        lambda name, params: {"type": "function", "function": {"name": name, "parameters": params}},
        st.sampled_from(["get_weather", "search_docs", "create_event", "convert_currency"]),
        _parameter_schemas(),
    )
    tools = st.lists(tool, max_size=3, unique_by=lambda t: t["function"]["name"])
    text = st.sampled_from(
        [
            "What is the weather in Oslo?",
            "Search the docs for retries.",
            "Hi!",
            "Create an event for Friday.",
            "Convert 20 EUR to JPY.",
            "Écris un haïku sur la mer.",
        ]
    )
    choice = st.one_of(
        st.sampled_from(["auto", "none", "required"]),
        st.sampled_from(["get_weather", "search_docs", "nowhere"]).map(named),
    )
    return st.fixed_dictionaries(
        {"messages": text.map(lambda t: [{"role": "system", "content": "Be brief."}, {"role": "user", "content": t}])},
        optional={
            "tools": tools,
            "tool_choice": choice,
            "parallel_tool_calls": st.booleans(),
            "response_format": st.sampled_from(RESPONSE_SCHEMAS).map(
                lambda schema: {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
            ),
            "modalities": st.sampled_from([["text"], ["text", "audio"]]),
            "audio": st.just({"voice": "alloy"}),
            "stream": st.booleans(),
        },
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.nested_given, HealthCheck.too_slow])
@given(body=_realistic_requests(), seed=st.integers(0, 2**32 - 1))
def test_realistic_requests_are_honoured_or_refused(body, seed, validator):
    assert validator.validate_request(body) == []
    result = fallback_turn(body, seed)
    offered = {t["function"]["name"]: t["function"]["parameters"] for t in body.get("tools", [])}
    choice = body.get("tool_choice", "auto")
    if isinstance(result, Refusal):
        assert result.status == 400
        assert (result.param, result.code) == ("tool_choice", "invalid_tool_choice"), result
        return
    assert turn_mismatch(result, body) is None  # the server's own check that a reply obeys its request
    if choice == "required" or isinstance(choice, dict):
        assert result.tool_calls
    if body.get("parallel_tool_calls") is False:
        assert len(result.tool_calls) <= 1
    for call in result.tool_calls:
        schema = offered[call["function"]["name"]]
        validator_ = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        assert list(validator_.iter_errors(json.loads(call["function"]["arguments"]))) == []
    if not result.tool_calls and "audio" in body.get("modalities", []):
        shaped = shape_for_modalities(result, body, seed)
        assert shaped.audio is not None and shaped.audio.transcript == result.content


# -- through the real server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fallback_server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    empty = tmp_path_factory.mktemp("no-fixtures")
    return module_mock_server_factory(Path(empty), seed=3, no_delay=True, fallback=True)


def test_sdk_streams_a_fallback_tool_call_valid_on_the_wire(fallback_server, validator):
    body = ask("Book a flight for two.", tools=TOOLS, tool_choice=named("book_flight"), stream=True)
    raw = httpx.post(f"{fallback_server.url}/v1/chat/completions", json=body, timeout=10)
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    items, problems = parse_stream(raw.content)
    assert problems == []
    events = [e for e in items if isinstance(e, SSEEvent)]
    assert events[-1].data == "[DONE]"
    for event in events[:-1]:
        assert validator.validate_event(json.loads(event.data)) == []

    client = openai.OpenAI(base_url=f"{fallback_server.url}/v1", api_key="test", max_retries=0)
    fragments: dict[int, dict[str, str]] = {}
    for chunk in client.chat.completions.create(**body):
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = fragments.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                call["name"] += (delta.function.name or "") if delta.function else ""
                call["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert [c["name"] for c in fragments.values()] == ["book_flight"]
    check_arguments(
        {
            "id": fragments[0]["id"],
            "type": "function",
            "function": {"name": "book_flight", "arguments": fragments[0]["arguments"]},
        }
    )


def test_sdk_gets_a_400_naming_the_unoffered_tool_and_the_server_keeps_serving(fallback_server, validator):
    client = openai.OpenAI(base_url=fallback_server.url, api_key="test", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ask("Hi", tools=[WEATHER], tool_choice=named("get_stock_price"), stream=False))
    error_body = caught.value.response.json()
    assert validator.validate_response(400, error_body) == []
    assert error_body["error"]["param"] == "tool_choice" and error_body["error"]["code"] == "invalid_tool_choice"
    assert "get_stock_price" in error_body["error"]["message"] and "get_weather" in error_body["error"]["message"]
    reply = client.chat.completions.create(**ask("Suggest a name for a bakery.", stream=False))
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"


def test_the_same_request_streamed_or_not_gets_the_same_reply():
    """Only ``stream`` differs, so the made-up reply must not: a client compares the two."""
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("get_weather", "get_local_time", "convert_currency")
    ]
    for seed in range(20):
        body = ask("Check the weather, the time and convert 20 EUR.", tools=tools, tool_choice="required")
        streamed, plain = fallback_turn({**body, "stream": True}, seed), fallback_turn({**body, "stream": False}, seed)
        assert [c["function"]["name"] for c in streamed.tool_calls] == [c["function"]["name"] for c in plain.tool_calls]
        assert streamed.tool_calls == plain.tool_calls


@pytest.mark.parametrize(
    "where, schema",
    [
        ("tool", {"type": "object", "required": ["xs"], "properties": {"xs": {"type": "array", "minItems": 10**9}}}),
        ("tool", {"type": "object", "required": ["s"], "properties": {"s": {"type": "string", "minLength": 10**9}}}),
        ("format", {"type": "object", "minProperties": 10**6}),
        ("format", {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}}),
    ],
    ids=["minItems-1e9", "minLength-1e9", "minProperties-1e6", "nested-1000x1000"],
)
def test_a_value_larger_than_the_mock_builds_is_refused_at_once(where: str, schema: dict) -> None:
    """A tiny schema can ask for gigabytes; the answer is a fast 400, not a stalled server."""
    import time

    if where == "tool":
        body = ask(
            "Hi",
            tools=[{"type": "function", "function": {"name": "huge", "parameters": schema}}],
            tool_choice="required",
        )
    else:
        body = ask("Hi", response_format={"type": "json_schema", "json_schema": {"name": "huge", "schema": schema}})
    started = time.perf_counter()
    refusal = fallback_turn(body, 0)
    assert time.perf_counter() - started < 2.0
    assert isinstance(refusal, Refusal) and refusal.status == 400
    assert "larger than the mock builds" in refusal.message
    assert refusal.code == ("invalid_function_parameters" if where == "tool" else "invalid_json_schema")
