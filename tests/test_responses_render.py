"""Fixture replies rendered for the Responses API, checked with the official SDK's own types and accumulator.

Every body and every event is parsed strictly with the SDK's pydantic models (no coercion, and no field the
model does not declare, at any depth); the bytes are then read by the SDK itself, through an in-process
transport, so its SSE decoder and its stream accumulator (``ResponseStreamState``, behind
``client.responses.stream``) assemble the stream, which must equal the non-streamed response.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseErrorEvent, ResponseStreamEvent

from mockserver.faults import DISCONNECT, Disconnect, FaultPlan, Write
from mockserver.fixtures import Fixture, load_fixtures
from mockserver.prepared import ReplyBytes
from mockserver.responses_render import (
    ResponseIdentity,
    ResponsesReply,
    error_event,
    malformed_event,
    stream_writes,
)
from mockserver.responses_request import ResponsesRequest, read_responses_request
from mockserver.stream import DONE, ReplyIdentity, compute_usage, pacing_delays
from mockserver.turns import AssistantTurn, Pacing

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = {fixture.name: fixture for fixture in load_fixtures(ROOT / "fixtures")}
EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
IDENTITY = ResponseIdentity.from_reply_id("chatcmpl-test", 1_700_000_000, "gpt-4o")
DELTAS = ("response.output_text.delta", "response.refusal.delta", "response.function_call_arguments.delta")


class City(pydantic.BaseModel):
    city: str
    temp_c: float


def extras(value: Any, where: str = "") -> list[str]:
    """Every field, at any depth of a parsed SDK model, that its type does not declare."""
    if isinstance(value, pydantic.BaseModel):
        found = [f"{where}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += extras(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, (list, tuple)):
        return [problem for i, item in enumerate(value) for problem in extras(item, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [problem for key, item in value.items() for problem in extras(item, f"{where}.{key}")]
    return []


def strict_response(data: dict[str, Any]) -> Response:
    """The SDK's Response, strictly: a missing required field or a wrong type raises, and so does an extra."""
    response = Response.model_validate(data, strict=True)
    unknown = extras(response)
    if unknown:
        raise AssertionError(f"fields the SDK's Response does not declare: {unknown}")
    return response


def strict_event(event: bytes) -> Any:
    """One encoded event, as the SDK's event union parses it (strictly), checked against its ``event:`` line."""
    head, _, data = event.partition(b"\n")
    assert event.endswith(b"\n\n") and data.startswith(b"data: ") and data.count(b"\n") == 2
    payload = json.loads(data.removeprefix(b"data: "))
    parsed = EVENTS.validate_python(payload, strict=True)
    assert head == b"event: " + payload["type"].encode()
    unknown = extras(parsed)
    assert not unknown, f"{payload['type']}: fields the SDK does not declare: {unknown}"
    return parsed


def unparsed(value: Any) -> Any:
    """A dumped ``ParsedResponse`` item without the ``parsed`` and ``parsed_arguments`` fields the SDK adds."""
    if isinstance(value, dict):
        return {key: unparsed(item) for key, item in value.items() if key not in ("parsed", "parsed_arguments")}
    return [unparsed(item) for item in value] if isinstance(value, list) else value


def request_for(fixture: Fixture, **extra: Any) -> ResponsesRequest:
    body: dict[str, Any] = {"model": "gpt-4o", "input": "x", **extra}
    if fixture.match.get("response_format") == "json_schema":
        body["text"] = {"format": {"type": "json_schema", "name": "city", "schema": City.model_json_schema()}}
    request = read_responses_request(body)
    assert isinstance(request, ResponsesRequest)
    return request


def rendered(fixture_name: str, turn_index: int | None = None, **extra: Any) -> tuple[AssistantTurn, ResponsesReply]:
    fixture = FIXTURES[fixture_name]
    index = turn_index if turn_index is not None else min(fixture.turns)
    turn = fixture.turns[index]
    request = request_for(fixture, **extra)
    messages = list(fixture.conversation[:index])
    return turn, ResponsesReply(turn, IDENTITY, compute_usage(messages, turn), request)


def every_reply() -> Iterator[tuple[str, int]]:
    for name, fixture in sorted(FIXTURES.items()):
        for index in sorted(fixture.turns):
            yield name, index


def sdk_client(content: bytes, media_type: str) -> openai.OpenAI:
    """The SDK reading ``content`` as the server's answer, whatever it asks."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"content-type": media_type})

    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        http_client=httpx.Client(transport=transport),
    )


# -- the strict check can fail ---------------------------------------------------------------------


def test_the_strict_check_fails_on_a_missing_field_a_wrong_type_and_an_extra_field() -> None:
    _, reply = rendered("hello")
    good = reply.response
    strict_response(good)
    for required in ("id", "output", "parallel_tool_calls", "tool_choice", "tools", "model", "created_at"):
        with pytest.raises(pydantic.ValidationError):
            strict_response({key: value for key, value in good.items() if key != required})
    with pytest.raises(pydantic.ValidationError):
        strict_response({**good, "created_at": "1700000000"})  # coerced by a lax parse, refused by a strict one
    with pytest.raises(AssertionError, match="output"):
        strict_response({**good, "output": [{**good["output"][0], "unexpected": 1}]})
    usage = {**good["usage"], "input_tokens_details": {"cached_tokens": 0}}
    with pytest.raises(pydantic.ValidationError):
        strict_response({**good, "usage": usage})
    with pytest.raises(pydantic.ValidationError):
        strict_event(b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"}\n\n')


# -- every bundled reply ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture_name", "turn_index"), list(every_reply()))
def test_every_bundled_reply_renders_as_the_sdk_types_it(fixture_name: str, turn_index: int) -> None:
    turn, reply = rendered(fixture_name, turn_index)
    response = strict_response(reply.response)
    events = [strict_event(event) for event in reply.events]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    assert events[-1].type == (
        "response.incomplete" if turn.effective_finish_reason == "length" else "response.completed"
    )
    assert events[-1].response.model_dump() == response.model_dump()
    assert len(reply.paced) == len(reply.events)
    for event, paced in zip(events, reply.paced):
        carries_a_token = event.type in DELTAS or (
            event.type == "response.output_item.added" and event.item.type == "function_call"
        )
        assert paced == carries_a_token, event.type
    assert not any(DONE in event for event in reply.events)


@pytest.mark.parametrize(("fixture_name", "turn_index"), list(every_reply()))
def test_the_sdk_assembles_the_stream_into_the_non_streamed_response(fixture_name: str, turn_index: int) -> None:
    turn, reply = rendered(fixture_name, turn_index)
    whole = sdk_client(reply.body(), "application/json").responses.create(model="gpt-4o", input="x")
    with sdk_client(b"".join(reply.events), "text/event-stream").responses.stream(model="gpt-4o", input="x") as stream:
        events = list(stream)
        final = stream.get_final_response() if turn.effective_finish_reason != "length" else None
    texts = [event.snapshot for event in events if event.type == "response.output_text.delta"]
    assembled_text = texts[-1] if texts else ""
    assert assembled_text == whole.output_text == (turn.content or (turn.audio.transcript if turn.audio else "") or "")
    calls = [item for item in whole.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        (call["id"], call["function"]["name"], call["function"]["arguments"]) for call in turn.tool_calls
    ]
    for call in calls:
        snapshots = [
            e.snapshot for e in events if e.type == "response.function_call_arguments.delta" and e.item_id == call.id
        ]
        assert (snapshots[-1] if snapshots else "") == call.arguments
    refusals = "".join(e.delta for e in events if e.type == "response.refusal.delta")
    assert refusals == (turn.refusal or "")
    if final is not None:
        assert final.output_text == whole.output_text
        assert [unparsed(item.model_dump()) for item in final.output] == [item.model_dump() for item in whole.output]
        assert final.usage == whole.usage


# -- the shapes --------------------------------------------------------------------------------------


def test_a_text_reply_is_one_message_with_an_output_text_part() -> None:
    turn, reply = rendered("hello")
    response = strict_response(reply.response)
    assert response.id.startswith("resp_") and response.object == "response" and response.status == "completed"
    assert (
        response.created_at == 1_700_000_000 and response.completed_at == 1_700_000_000 and response.model == "gpt-4o"
    )
    (message,) = response.output
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert message.role == "assistant" and [part.type for part in message.content] == ["output_text"]
    assert response.output_text == turn.content and message.content[0].annotations == []
    assert response.incomplete_details is None and response.error is None


def test_tool_calls_are_function_call_items_with_the_fixture_s_call_ids() -> None:
    _, reply = rendered(
        "parallel-weather", tools=[{"type": "function", "name": "get_weather"}], parallel_tool_calls=True
    )
    response = strict_response(reply.response)
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    assert [item.call_id for item in response.output] == ["call_paris", "call_tokyo"]
    assert [json.loads(item.arguments) for item in response.output] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert all(item.id.startswith("fc_") and item.status == "completed" for item in response.output)
    assert len({item.id for item in response.output}) == 2
    assert response.tools[0].name == "get_weather" and response.parallel_tool_calls is True
    types = [json.loads(e.partition(b"data: ")[2])["type"] for e in reply.events]
    assert types.count("response.function_call_arguments.done") == 2


def test_a_refusal_is_a_refusal_part_streamed_as_refusal_deltas() -> None:
    turn, reply = rendered("refusal")
    response = strict_response(reply.response)
    (message,) = response.output
    assert [part.type for part in message.content] == ["refusal"]
    assert message.content[0].refusal == turn.refusal and response.output_text == ""
    events = [strict_event(e) for e in reply.events]
    assert "".join(e.delta for e in events if e.type == "response.refusal.delta") == turn.refusal
    (done,) = [e for e in events if e.type == "response.refusal.done"]
    assert done.refusal == turn.refusal


def test_json_schema_content_parses_into_the_client_s_type() -> None:
    fixture = FIXTURES["structured-output"]
    _, reply = rendered("structured-output")
    assert reply.response["text"]["format"]["type"] == "json_schema"
    parsed = sdk_client(reply.body(), "application/json").responses.parse(model="gpt-4o", input="x", text_format=City)
    assert parsed.output_parsed == City(city="Paris", temp_c=18)
    with sdk_client(b"".join(reply.events), "text/event-stream").responses.stream(
        model="gpt-4o", input="x", text_format=City
    ) as stream:
        assert stream.get_final_response().output_parsed == City(city="Paris", temp_c=18)
    assert fixture.match == {"response_format": "json_schema"}


def test_a_reply_cut_at_its_length_is_incomplete() -> None:
    _, reply = rendered("long-answer")
    response = strict_response(reply.response)
    assert response.status == "incomplete" and response.completed_at is None
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"
    assert strict_event(reply.events[-1]).type == "response.incomplete"


def test_usage_is_the_chat_usage_in_responses_form() -> None:
    _, reply = rendered("long-answer")  # its fixture gives usage {15, 12, 27}
    usage = strict_response(reply.response).usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (15, 12, 27)
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    turn = AssistantTurn(
        content="Hi",
        usage={"prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens_details": {"reasoning_tokens": 3}},
    )
    chat_usage = compute_usage([{"role": "user", "content": "Hello there"}], turn)
    usage = strict_response(ResponsesReply(turn, IDENTITY, chat_usage, request_for(FIXTURES["hello"])).response).usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (chat_usage["prompt_tokens"], chat_usage["completion_tokens"])
    assert usage.input_tokens_details.cached_tokens == 5 and usage.output_tokens_details.reasoning_tokens == 3


def test_the_response_repeats_the_request_s_settings() -> None:
    _, reply = rendered(
        "hello",
        instructions="Be brief.",
        temperature=0.3,
        top_p=0.5,
        max_output_tokens=100,
        metadata={"run": "1"},
        store=False,
        tool_choice="none",
        previous_response_id="resp_prev",
        text={"verbosity": "low"},
    )
    response = strict_response(reply.response)
    assert (response.instructions, response.temperature, response.top_p) == ("Be brief.", 0.3, 0.5)
    assert (response.max_output_tokens, response.metadata) == (100, {"run": "1"})
    assert (response.tool_choice, response.previous_response_id) == ("none", "resp_prev")
    assert response.text is not None and response.text.verbosity == "low" and response.text.format is not None
    assert response.text.format.type == "text"


def test_a_reply_with_text_and_a_call_is_a_message_then_a_call() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    turn = AssistantTurn(content="Let me look.", tool_calls=(call,))
    reply = ResponsesReply(turn, IDENTITY, compute_usage([], turn), request_for(FIXTURES["hello"]))
    response = strict_response(reply.response)
    assert [item.type for item in response.output] == ["message", "function_call"]
    events = [strict_event(e) for e in reply.events]
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == [0, 1]


def test_ids_follow_the_reply_id() -> None:
    again = ResponseIdentity.from_reply_id("chatcmpl-test", 1_700_000_000, "gpt-4o")
    other = ResponseIdentity.from_reply_id("chatcmpl-other", 1_700_000_000, None)
    assert again == IDENTITY and other.id != IDENTITY.id and other.model == "mock-model"
    assert IDENTITY.item_id("msg", 0) != IDENTITY.item_id("fc", 1) != other.item_id("fc", 1)
    _, first = rendered("paris-weather")
    _, second = rendered("paris-weather")
    assert first.events == second.events and first.body() == second.body()


# -- pacing and faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture_name", "turn_index"), list(every_reply()))
def test_a_reply_is_paced_as_its_chat_stream_is(fixture_name: str, turn_index: int) -> None:
    turn, reply = rendered(fixture_name, turn_index)
    if turn.audio is not None:
        pytest.skip("chat streams audio data pieces; the Responses API sends the transcript as text")
    chat = ReplyBytes(turn, ReplyIdentity("chatcmpl-test", 0, "gpt-4o"), compute_usage([], turn))
    assert sum(reply.paced) == sum(chat.paced)
    delays = pacing_delays(reply.paced, Pacing(ttft_ms=100.0, tokens_per_second=50.0, jitter=0.0), None)
    paced_delays = [delay for delay, paced in zip(delays, reply.paced) if paced]
    if turn.content or turn.tool_calls or turn.refusal:  # a turn with nothing to say has no token to wait for
        assert paced_delays[:1] == [0.1] and set(paced_delays[1:]) <= {0.02}
    assert all(delay == 0.0 for delay, paced in zip(delays, reply.paced) if not paced)


def _writes(fixture_name: str, plan: FaultPlan | None) -> tuple[list[bytes], list[Write | Disconnect]]:
    _, reply = rendered(fixture_name)
    delays = [0.0] * len(reply.events)
    return reply.events, stream_writes(reply.events, delays, plan, IDENTITY.id)


def test_without_a_fault_the_writes_are_the_events_and_no_done() -> None:
    events, writes = _writes("hello", None)
    assert [w.data for w in writes if isinstance(w, Write)] == events


def test_disconnect_and_stall_apply_as_for_chat() -> None:
    events, writes = _writes("hello", FaultPlan("disconnect", after_chunks=3))
    assert writes == [*(Write(0.0, event) for event in events[:3]), DISCONNECT]
    events, writes = _writes("hello", FaultPlan("stall", after_chunks=4, stall_ms=500.0))
    assert [w.delay for w in writes if isinstance(w, Write)] == [0.0] * 4 + [0.5] + [0.0] * (len(events) - 5)
    _, writes = _writes("hello", FaultPlan("stall", after_chunks=10_000, stall_ms=500.0))
    assert writes[-1] == Write(0.5, b"")  # held open after the last event, then closed


def test_no_done_leaves_out_the_completed_event() -> None:
    events, writes = _writes("hello", FaultPlan("no_done"))
    assert [w.data for w in writes if isinstance(w, Write)] == events[:-1]
    assert b"response.completed" in events[-1]


def test_malformed_chunk_is_a_cut_off_responses_event() -> None:
    events, writes = _writes("hello", FaultPlan("malformed_chunk", after_chunks=5))
    data = [w.data for w in writes if isinstance(w, Write)]
    assert data[:5] == events[:5] and data[6:] == events[5:]
    assert data[5] == malformed_event(IDENTITY.id) and data[5].startswith(b"event: response.output_text.delta\n")
    with pytest.raises(ValueError):
        json.loads(data[5].partition(b"data: ")[2])
    assert b"chat.completion" not in b"".join(data)


def test_keepalive_and_split_utf8_apply_as_for_chat() -> None:
    events, writes = _writes("hello", FaultPlan("keepalive", every_chunks=2))
    data = [w.data for w in writes if isinstance(w, Write)]
    assert data.count(b": ping\n\n") == len(events) // 2 and [d for d in data if d != b": ping\n\n"] == events
    events, writes = _writes("split-utf8", FaultPlan("split_utf8"))
    data = [w.data for w in writes if isinstance(w, Write)]
    assert b"".join(data) == b"".join(events) and len(data) == len(events) + 1


def test_the_error_event_is_the_sdk_s_error_event() -> None:
    event = strict_event(error_event(7, "injected fault: the stream failed", "server_error"))
    assert isinstance(event, ResponseErrorEvent)
    assert (event.sequence_number, event.code, event.message, event.param) == (
        7,
        "server_error",
        "injected fault: the stream failed",
        None,
    )
