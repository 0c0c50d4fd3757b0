"""The named checks over hand-built exchanges: realistic bytes, parsed with the project's SSE parser.

For every check there is an exchange it passes and a minimal exchange that breaks
exactly its rule and fails with that check's name and no other. Then blame: a
correct exchange judged against the seed document yields document defects only.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.checks import CHECKS, CheckContext, checks_table, default_checks, is_refusal, run_checks, select_checks
from contract.core.exchange import NOT_JSON, Exchange, PreparedRequest, Timings
from contract.core.semantics import assemble_message, assemble_stream
from contract.core.spec import load_spec
from contract.core.sse import SSEComment, SSEEvent, encode_comment, encode_event, parse_stream
from contract.strategies import wav_bytes

ROOT = Path(__file__).resolve().parent.parent
URL = "http://127.0.0.1:8000/chat/completions"
ID, CREATED, MODEL = "chatcmpl-7Qk2", 1_732_600_000, "gpt-4o"
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
ERROR = {
    "error": {
        "message": "messages: expected array, got string",
        "type": "invalid_request_error",
        "param": "messages",
        "code": None,
    }
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


# -- building exchanges from what a server sends ---------------------------------------------


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, *, index: int = 0, usage: Any = None, **top: Any
) -> dict[str, Any]:
    body = {
        "id": ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    body.update(top)
    return body


def text_chunks(text: str = "Hello there", finish: str = "stop") -> list[dict[str, Any]]:
    pieces = ["Hel", "lo", " there"] if text == "Hello there" else [text]
    return (
        [chunk({"role": "assistant", "content": ""})]
        + [chunk({"content": p}) for p in pieces]
        + [chunk({}, finish), chunk(None, usage=USAGE)]
    )


def tool_chunks(calls: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Tool calls streamed as OpenAI-compatible servers do: id and name first, then argument fragments."""
    out = [chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
                    ]
                }
            )
        )
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    return out + [chunk({}, "tool_calls"), chunk(None, usage=USAGE)]


def sse_bytes(chunks: list[dict[str, Any]], done: bool = True) -> bytes:
    raw = b"".join(encode_event(json.dumps(c, ensure_ascii=False)) for c in chunks)
    return raw + (encode_event("[DONE]") if done else b"")


def request(body: Any, kind: str = "realistic", broken_rule: str | None = None) -> PreparedRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    return PreparedRequest("POST", URL, {"Content-Type": "application/json"}, body, raw, kind, broken_rule)


def stream_exchange(
    body: dict[str, Any],
    chunks: list[dict[str, Any]] | None = None,
    *,
    raw: bytes | None = None,
    done: bool = True,
    **fields: Any,
) -> Exchange:
    raw = raw if raw is not None else sse_bytes(chunks or [], done)
    items, problems = parse_stream(raw)
    return Exchange(
        request(body, **fields.pop("request_fields", {})),
        status=fields.pop("status", 200),
        headers={"content-type": "text/event-stream"},
        content_type="text/event-stream",
        events=[i for i in items if isinstance(i, SSEEvent)],
        comments=[i for i in items if isinstance(i, SSEComment)],
        sse_problems=problems,
        timings=Timings(ttfb_ms=40.0, ttft_ms=60.0, total_ms=300.0),
        **fields,
    )


def json_exchange(
    body: Any,
    status: int,
    payload: Any,
    content_type: str = "application/json",
    kind: str = "realistic",
    broken_rule: str | None = None,
    **fields: Any,
) -> Exchange:
    raw = json.dumps(payload).encode() if payload is not NOT_JSON else fields.pop("raw", b"oops")
    return Exchange(
        request(body, kind, broken_rule),
        status=status,
        headers={"content-type": content_type},
        content_type=content_type,
        body=raw,
        json=payload,
        timings=Timings(ttfb_ms=40.0, ttft_ms=None, total_ms=80.0),
        **fields,
    )


def completion(message: dict[str, Any], finish: str = "stop", usage: Any = USAGE) -> dict[str, Any]:
    return {
        "id": ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "usage": usage,
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
    }


HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}]}
NO_STREAM = {**HELLO, "stream": False}
WITH_TOOLS = {**HELLO, "tools": [WEATHER_TOOL, TIME_TOOL]}
WEATHER_CALL = ("call_1", "get_weather", '{"city": "Paris"}')
WAV_B64 = base64.b64encode(wav_bytes(20)).decode()


def audio_chunks(transcript: str = "Hello there", data: str = WAV_B64) -> list[dict[str, Any]]:
    half = (len(data) // 8) * 4  # independent base64 pieces, as servers send them
    return [
        chunk({"role": "assistant", "content": None}),
        chunk({"audio": {"id": "audio_1", "transcript": transcript}}),
        chunk({"audio": {"data": data[:half]}}),
        chunk({"audio": {"data": data[half:], "expires_at": CREATED + 3600}}),
        chunk({}, "stop"),
        chunk(None, usage=USAGE),
    ]


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    return CheckContext.for_spec(load_spec(ROOT / "openapi.yaml"), max_ttft_ms=500.0)


def failing(ctx: CheckContext, exchange: Exchange, names: list[str] | None = None) -> set[str]:
    failures = run_checks(ctx, exchange, names or default_checks())
    for failure in failures:
        assert "\n" not in failure.message and failure.expected and failure.seen, failure
        assert failure.blame == "server", failure
    return {f.check for f in failures}


# -- passing exchanges: a correct server's answers pass every check ----------------------------

PASSING = {
    "text stream": lambda: stream_exchange(HELLO, text_chunks()),
    "keep-alive comments": lambda: stream_exchange(HELLO, raw=encode_comment("ping") + sse_bytes(text_chunks())),
    "tool-call stream": lambda: stream_exchange(
        {**WITH_TOOLS, "tool_choice": "required", "parallel_tool_calls": False}, tool_chunks([WEATHER_CALL])
    ),
    "parallel tool calls": lambda: stream_exchange(
        WITH_TOOLS, tool_chunks([WEATHER_CALL, ("call_2", "get_time", "{}")])
    ),
    "named tool": lambda: stream_exchange(
        {**WITH_TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        tool_chunks([WEATHER_CALL]),
    ),
    "tool_choice none": lambda: stream_exchange({**WITH_TOOLS, "tool_choice": "none"}, text_chunks()),
    "json_schema content": lambda: json_exchange(
        {
            **NO_STREAM,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "cat",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                },
            },
        },
        200,
        completion({"content": '{"name": "Tom"}'}),
    ),
    "audio stream": lambda: stream_exchange(
        {**HELLO, "modalities": ["text", "audio"], "audio": {"voice": "alloy"}}, audio_chunks()
    ),
    "audio json": lambda: json_exchange(
        {**NO_STREAM, "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
        200,
        completion(
            {"content": None, "audio": {"id": "audio_1", "expires_at": CREATED, "data": WAV_B64, "transcript": "Hello"}}
        ),
    ),
    "non-stream text": lambda: json_exchange(NO_STREAM, 200, completion({"content": "Hello there"})),
    "non-stream tool calls": lambda: json_exchange(
        {**WITH_TOOLS, "stream": False},
        200,
        completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            "tool_calls",
        ),
    ),
    "negative rejected": lambda: json_exchange(
        {"messages": "hi"}, 400, ERROR, kind="negative", broken_rule="wrong-type: /messages"
    ),
    "rate limited": lambda: json_exchange(HELLO, 429, {"error": {"message": "slow down", "type": "rate_limit"}}),
}


@pytest.mark.parametrize("name", PASSING)
def test_a_correct_exchange_passes_every_check(ctx: CheckContext, name: str) -> None:
    assert failing(ctx, PASSING[name](), list(CHECKS)) == set()


def test_the_same_answer_streamed_and_not_passes_the_shape_check(ctx: CheckContext) -> None:
    streamed = stream_exchange(WITH_TOOLS, tool_chunks([WEATHER_CALL]))
    plain = PASSING["non-stream tool calls"]()
    assert failing(replace(ctx, counterpart=plain), streamed) == set()
    assert failing(replace(ctx, counterpart=streamed), plain) == set()


# -- one minimal break per check: it fails with that check's name only ------------------------


def _tamper(chunks: list[dict[str, Any]], position: int, **changes: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(chunks)
    out[position].update(changes)
    return out


def _wrong_finish() -> list[dict[str, Any]]:
    out = text_chunks()
    out[1]["choices"][0]["finish_reason"] = "stop"
    return out


BREAKS: list[tuple[str, str, Any]] = [
    (
        "not_a_server_error",
        "500 with a valid error body",
        lambda: json_exchange(HELLO, 500, {"error": {"message": "boom", "type": "server_error"}}),
    ),
    ("status_code_documented", "418", lambda: json_exchange(HELLO, 418, ERROR)),
    (
        "content_type_matches",
        "stream absent answered with JSON",
        lambda: json_exchange(HELLO, 200, completion({"content": "Hello"})),
    ),
    (
        "content_type_matches",
        "error as text/plain",
        lambda: json_exchange(HELLO, 400, ERROR, content_type="text/plain; charset=utf-8"),
    ),
    (
        "response_body_valid",
        "response without created",
        lambda: json_exchange(
            NO_STREAM, 200, {k: v for k, v in completion({"content": "Hi"}).items() if k != "created"}
        ),
    ),
    (
        "response_body_valid",
        "a chunk sent as the response",
        lambda: json_exchange(NO_STREAM, 200, chunk({"content": "Hi"}, "stop")),
    ),
    ("error_body_valid", "error is a string", lambda: json_exchange(HELLO, 400, {"error": "bad request"})),
    (
        "negative_rejected",
        "negative request accepted",
        lambda: json_exchange(
            {"messages": "hi", "stream": False},
            200,
            completion({"content": "Hi"}),
            kind="negative",
            broken_rule="wrong-type: /messages",
        ),
    ),
    (
        "transport_ok",
        "read timeout mid-stream",
        lambda: stream_exchange(HELLO, text_chunks()[:2], done=False, transport_error="read timeout after 5.0 s"),
    ),
    (
        "ttft_within_limit",
        "slow first token",
        lambda: replace(stream_exchange(HELLO, text_chunks()), timings=Timings(ttfb_ms=100, ttft_ms=900)),
    ),
    (
        "sse_framing",
        "unknown field",
        lambda: stream_exchange(HELLO, raw=sse_bytes(text_chunks()).replace(b"data: ", b"colour: blue\ndata: ", 1)),
    ),
    (
        "sse_framing",
        "retry that is not a number",
        lambda: stream_exchange(HELLO, raw=sse_bytes(text_chunks()).replace(b"data: ", b"retry: soon\ndata: ", 1)),
    ),
    (
        "chunks_valid",
        "a response object in the stream",
        lambda: stream_exchange(HELLO, _tamper(text_chunks(), 2, object="chat.completion")),
    ),
    (
        "chunks_valid",
        "data that is not JSON",
        lambda: stream_exchange(HELLO, raw=sse_bytes(text_chunks()).replace(b"\n\n", b"\n\ndata: {oops\n\n", 1)),
    ),
    ("stream_terminated", "no [DONE]", lambda: stream_exchange(HELLO, text_chunks(), done=False)),
    (
        "stream_terminated",
        "an event after [DONE]... reported with framing",
        lambda: stream_exchange(HELLO, raw=sse_bytes(text_chunks()) + encode_event("{}")),
    ),
    ("consistent_ids", "id changes", lambda: stream_exchange(HELLO, _tamper(text_chunks(), 2, id="chatcmpl-other"))),
    ("consistent_ids", "model changes", lambda: stream_exchange(HELLO, _tamper(text_chunks(), 3, model="gpt-4"))),
    (
        "role_first",
        "no role in the first delta",
        lambda: stream_exchange(HELLO, [chunk({"content": ""})] + text_chunks()[1:]),
    ),
    ("finish_reason_once", "two finish reasons", lambda: stream_exchange(HELLO, _wrong_finish())),
    (
        "finish_reason_once",
        "no finish reason",
        lambda: stream_exchange(
            HELLO, [c for c in text_chunks() if not (c["choices"] and c["choices"][0]["finish_reason"])]
        ),
    ),
    (
        "tool_calls_assemble",
        "a tool that was not offered",
        lambda: stream_exchange(WITH_TOOLS, tool_chunks([("call_1", "get_wether", '{"city": "Paris"}')])),
    ),
    (
        "tool_calls_assemble",
        "arguments that are not JSON",
        lambda: stream_exchange(WITH_TOOLS, tool_chunks([("call_1", "get_weather", '{"city": "Par')])),
    ),
    (
        "tool_calls_assemble",
        "strict arguments that break the parameters",
        lambda: stream_exchange(WITH_TOOLS, tool_chunks([("call_1", "get_weather", '{"town": "Paris"}')])),
    ),
    (
        "tool_calls_assemble",
        "a call without an id",
        lambda: stream_exchange(WITH_TOOLS, tool_chunks([("", "get_weather", '{"city": "Paris"}')])),
    ),
    (
        "tool_choice_honoured",
        "none, yet a call",
        lambda: stream_exchange({**WITH_TOOLS, "tool_choice": "none"}, tool_chunks([WEATHER_CALL])),
    ),
    (
        "tool_choice_honoured",
        "required, yet text",
        lambda: stream_exchange({**WITH_TOOLS, "tool_choice": "required"}, text_chunks()),
    ),
    (
        "tool_choice_honoured",
        "named, yet another tool",
        lambda: stream_exchange(
            {**WITH_TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            tool_chunks([WEATHER_CALL]),
        ),
    ),
    (
        "parallel_tool_calls_honoured",
        "false, yet two calls",
        lambda: stream_exchange(
            {**WITH_TOOLS, "parallel_tool_calls": False}, tool_chunks([WEATHER_CALL, ("call_2", "get_time", "{}")])
        ),
    ),
    (
        "response_format_honoured",
        "content that breaks the schema",
        lambda: json_exchange(
            {
                **NO_STREAM,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "cat", "schema": {"type": "object", "required": ["name"]}},
                },
            },
            200,
            completion({"content": '{"nom": "Tom"}'}),
        ),
    ),
    (
        "response_format_honoured",
        "content that is not JSON",
        lambda: stream_exchange(
            {
                **HELLO,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "cat", "schema": {"type": "object"}},
                },
            },
            text_chunks(),
        ),
    ),
    ("audio_present", "no audio", lambda: stream_exchange({**HELLO, "modalities": ["text", "audio"]}, text_chunks())),
    (
        "audio_present",
        "audio data is not base64",
        lambda: stream_exchange({**HELLO, "modalities": ["text", "audio"]}, audio_chunks(data="not base64!!")),
    ),
    (
        "audio_present",
        "a broken WAV",
        lambda: stream_exchange(
            {**HELLO, "modalities": ["text", "audio"]},
            audio_chunks(data=base64.b64encode(b"RIFF\x00\x00\x00\x00WAVEjunk").decode()),
        ),
    ),
    (
        "audio_present",
        "no transcript",
        lambda: stream_exchange({**HELLO, "modalities": ["text", "audio"]}, audio_chunks(transcript="")),
    ),
    (
        "usage_consistent",
        "total is not the sum",
        lambda: json_exchange(
            NO_STREAM,
            200,
            completion({"content": "Hi"}, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 6}),
        ),
    ),
    (
        "usage_consistent",
        "a negative count",
        lambda: stream_exchange(
            HELLO,
            text_chunks()[:-1] + [chunk(None, usage={"prompt_tokens": -1, "completion_tokens": 2, "total_tokens": 1})],
        ),
    ),
]


@pytest.mark.parametrize(("check", "story", "build"), BREAKS, ids=[f"{c}: {s}" for c, s, _ in BREAKS])
def test_a_minimal_break_fails_that_check_only(ctx: CheckContext, check: str, story: str, build: Any) -> None:
    exchange = build()
    names = [name for name in CHECKS if CHECKS[name].default]
    found = failing(ctx, exchange, names)
    if story.endswith("reported with framing"):  # bytes after [DONE] are also a framing problem, by design
        assert found == {check, "sse_framing"}
    else:
        assert found == {check}


def test_every_check_has_a_break() -> None:
    opt_in = {"valid_request_accepted", "stream_matches_nonstream", "usage_chunk_as_asked"}  # each tested below
    covered = {check for check, _, _ in BREAKS} | opt_in
    assert covered == set(CHECKS)


def test_usage_chunk_as_asked_judges_only_where_the_profile_makes_usage_optional(ctx: CheckContext) -> None:
    openai = CheckContext.for_spec(load_spec(ROOT / "openapi.yaml", profile="openai"))
    streamed = {**HELLO, "stream": True}
    unasked = stream_exchange(streamed, text_chunks())  # ends with a usage chunk nobody asked for
    assert failing(openai, unasked, ["usage_chunk_as_asked"]) == {"usage_chunk_as_asked"}
    assert failing(ctx, unasked, ["usage_chunk_as_asked"]) == set(), "the seed sends usage on every stream"
    asked = {**streamed, "stream_options": {"include_usage": True}}
    assert failing(openai, stream_exchange(asked, text_chunks()), ["usage_chunk_as_asked"]) == set()
    assert failing(openai, stream_exchange(asked, text_chunks()[:-1]), ["usage_chunk_as_asked"]) == {
        "usage_chunk_as_asked"
    }
    assert failing(openai, stream_exchange(streamed, text_chunks()[:-1]), ["usage_chunk_as_asked"]) == set()


def test_valid_request_accepted_is_opt_in_and_refusals_are_counted(ctx: CheckContext) -> None:
    refused = json_exchange(
        {**WITH_TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_time"}}}, 400, ERROR
    )
    assert failing(ctx, refused) == set()
    assert is_refusal(ctx, refused)
    assert failing(ctx, refused, default_checks() + ["valid_request_accepted"]) == {"valid_request_accepted"}
    assert failing(replace(ctx, accept_valid=True), refused) == {"valid_request_accepted"}
    negative = json_exchange({"messages": "hi"}, 400, ERROR, kind="negative")
    assert not is_refusal(ctx, negative)
    assert failing(replace(ctx, accept_valid=True), negative) == set()


def test_stream_and_nonstream_of_another_shape_fail_the_shape_check_only(ctx: CheckContext) -> None:
    streamed = stream_exchange(WITH_TOOLS, text_chunks())
    plain = PASSING["non-stream tool calls"]()
    assert failing(replace(ctx, counterpart=plain), streamed) == {"stream_matches_nonstream"}
    other_finish = json_exchange(
        {**WITH_TOOLS, "stream": False}, 200, completion({"content": "Hello there"}, finish="length")
    )
    assert failing(replace(ctx, counterpart=other_finish), streamed) == {"stream_matches_nonstream"}


def test_failure_messages_name_the_event_and_the_offset(ctx: CheckContext) -> None:
    raw = sse_bytes(text_chunks())
    bad = stream_exchange(HELLO, raw=raw[:20] + b"\xff" + raw[20:])
    framing = run_checks(ctx, bad, ["sse_framing"])
    assert framing and framing[0].message.startswith("byte 20:") and framing[0].seen == "invalid_utf8"
    tampered = stream_exchange(HELLO, _tamper(text_chunks(), 2, created="now"))
    messages = [f.message for f in run_checks(ctx, tampered, ["chunks_valid", "consistent_ids"])]
    assert any(m.startswith("event 2 /created: expected integer") for m in messages), messages
    assert any(m.startswith("event 2: created") for m in messages), messages


# -- assembly -----------------------------------------------------------------------------------


def test_stream_and_message_assemble_to_the_same_reply() -> None:
    streamed = stream_exchange(WITH_TOOLS, tool_chunks([WEATHER_CALL, ("call_2", "get_time", "{}")]))
    reply = assemble_stream(streamed.events)
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls.values()] == [
        WEATHER_CALL,
        ("call_2", "get_time", "{}"),
    ]
    assert reply.finish_reason == "tool_calls" and reply.usage == USAGE and reply.ids == [ID]
    message = assemble_message(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in (WEATHER_CALL, ("call_2", "get_time", "{}"))
                ],
            },
            "tool_calls",
        )
    )
    assert message.choice().kind == reply.choice().kind == "tool_calls"
    assert message.choice().tool_names == reply.choice().tool_names
    text = assemble_stream(stream_exchange(HELLO, text_chunks()).events)
    assert text.content == "Hello there" and text.choice().role == "assistant"


# -- hostile data never crashes a check ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "choices",
                    "delta",
                    "index",
                    "tool_calls",
                    "function",
                    "name",
                    "arguments",
                    "audio",
                    "data",
                    "usage",
                    "finish_reason",
                    "content",
                    "role",
                    "created",
                    "model",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(json_values, max_size=4), reply=json_values, body=json_values)
def test_checks_survive_garbage(ctx: CheckContext, chunks: list[Any], reply: Any, body: Any) -> None:
    request_body = {
        **WITH_TOOLS,
        "modalities": ["text", "audio"],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    streamed = stream_exchange(request_body, raw=b"".join(encode_event(json.dumps(c)) for c in chunks))
    plain = json_exchange(request_body, 200, reply)
    for exchange, other in ((streamed, plain), (plain, streamed), (json_exchange(body, 400, reply), None)):
        for failure in run_checks(replace(ctx, counterpart=other), exchange, list(CHECKS)):
            assert "\n" not in failure.message and failure.check in CHECKS


# -- blame: a correct server judged by the seed shows document defects only ------------------------


@dataclass(frozen=True)
class LintFinding:
    """The shape of a lint finding, as the checks read it."""

    level: str
    rule: str
    location: str
    message: str
    witness: Any


def correct_exchanges() -> list[Exchange]:
    return [
        stream_exchange(HELLO, text_chunks()),
        stream_exchange({**HELLO, "stream": True, "tools": [WEATHER_TOOL]}, tool_chunks([WEATHER_CALL])),
        json_exchange(NO_STREAM, 200, completion({"content": "Hello there"})),
        json_exchange(
            {**NO_STREAM, "tools": [WEATHER_TOOL]},
            200,
            completion(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": WEATHER_CALL[2]},
                        }
                    ],
                },
                "tool_calls",
            ),
        ),
        json_exchange({"messages": "hi"}, 400, ERROR, kind="negative", broken_rule="wrong-type: /messages"),
    ]


def test_correct_exchanges_pass_against_the_contract(ctx: CheckContext) -> None:
    for exchange in correct_exchanges():
        assert run_checks(ctx, exchange, default_checks()) == []


def test_the_seed_blames_the_document_not_the_server(seed_path: Path) -> None:
    seed = CheckContext.for_spec(load_spec(seed_path))
    failures = [f for exchange in correct_exchanges() for f in run_checks(seed, exchange, default_checks())]
    assert failures, "the seed's defects must show"
    assert {f.blame for f in failures} == {"document"}
    assert all(f.message.startswith("defect of the document, not the server") for f in failures)
    assert {f.check for f in failures} >= {
        "content_type_matches",
        "chunks_valid",
        "response_body_valid",
        "status_code_documented",
        "negative_rejected",
    }
    ambiguous = [f for f in failures if f.check == "response_body_valid"]
    assert "2 branches of the oneOf" in ambiguous[0].message and ambiguous[0].witness["object"] == "chat.completion"


def test_blame_carries_the_lint_witness(seed_path: Path) -> None:
    witness = {"id": "x", "choices": []}
    response_pointer = "#/paths/~1chat~1completions/post/responses/200/content/application~1json/schema"
    findings = [
        LintFinding("error", "ambiguous-response", response_pointer, "both branches match", witness),
        LintFinding(
            "error",
            "stream-not-documented",
            "#/paths/~1chat~1completions/post/responses/200",
            "stream defaults to true",
            {"messages": []},
        ),
    ]
    seed = CheckContext.for_spec(load_spec(seed_path), findings=findings)
    body = run_checks(seed, correct_exchanges()[2], ["response_body_valid"])
    assert [(f.blame, f.witness) for f in body] == [("document", witness)]
    assert "(ambiguous-response)" in body[0].message and '"choices": []' in body[0].message
    stream = run_checks(seed, correct_exchanges()[0], ["chunks_valid"])
    assert [(f.blame, f.witness) for f in stream] == [("document", {"messages": []})]


def test_blame_with_the_real_lint(seed_path: Path) -> None:
    lint = pytest.importorskip("contract.lint")
    spec = load_spec(seed_path)
    seed = CheckContext.for_spec(spec, findings=lint.lint_spec(spec))
    failures = [f for exchange in correct_exchanges() for f in run_checks(seed, exchange, default_checks())]
    assert failures and {f.blame for f in failures} == {"document"}


def test_a_server_failure_under_the_seed_is_still_the_server_s(seed_path: Path) -> None:
    seed = CheckContext.for_spec(load_spec(seed_path))
    broken = json_exchange(NO_STREAM, 200, {"id": 5, "choices": "none"})
    assert {f.blame for f in run_checks(seed, broken, ["response_body_valid"])} == {"server"}


# -- registry ------------------------------------------------------------------------------------


def test_selection_and_table() -> None:
    assert "valid_request_accepted" not in default_checks()
    assert select_checks(["sse_framing", "role_first"]) == ["sse_framing", "role_first"]
    assert "role_first" not in select_checks(exclude=["role_first"])
    assert select_checks(["all"]) == list(CHECKS)
    with pytest.raises(ValueError, match="unknown check 'rolefirst'"):
        select_checks(["rolefirst"])
    table = checks_table()
    assert all(f"| `{name}` |" in table for name in CHECKS) and "``" not in table


TINY = """
openapi: 3.0.3
info: {title: Tiny, version: "1"}
paths:
  /chat/completions:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [messages], properties: {messages: {type: array}}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties:
                  choices:
                    type: array
                    items:
                      type: object
                      properties:
                        finish_reason: {type: string}
"""


def test_a_null_the_document_forbids_is_its_defect_and_only_a_null(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    location = (
        "#/paths/~1chat~1completions/post/responses/200/content/application~1json/schema/properties/"
        "choices/items/properties/finish_reason"
    )
    finding = LintFinding("error", "null-forbidden", location, "finish_reason cannot be null", {"finish_reason": None})
    tiny = CheckContext.for_spec(load_spec(path), findings=[finding])
    null = json_exchange({"messages": []}, 200, {"choices": [{"finish_reason": None}]})
    [defect] = run_checks(tiny, null, ["response_body_valid"])
    assert (defect.blame, defect.witness) == ("document", {"finish_reason": None})
    # Worded for what it is, not as an ambiguous oneOf.
    assert "oneOf" not in defect.expected and "null allowed at /choices/0/finish_reason" in defect.expected
    number = json_exchange({"messages": []}, 200, {"choices": [{"finish_reason": 5}]})
    assert [f.blame for f in run_checks(tiny, number, ["response_body_valid"])] == ["server"]
