"""The checks read an exchange once: every event is parsed and the reply assembled once per judgement."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from test_checks import (
    HELLO,
    WEATHER_CALL,
    WITH_TOOLS,
    completion,
    json_exchange,
    stream_exchange,
    text_chunks,
    tool_chunks,
)

from contract.checks import CHECKS, CheckContext, judge
from contract.core import semantics
from contract.core.semantics import assemble_exchange, read_exchange, read_once
from contract.core.spec import load_spec


@pytest.fixture(scope="module")
def ctx() -> CheckContext:
    return CheckContext.for_spec(load_spec())


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = semantics.parse_json

    def counted(data: Any) -> Any:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(semantics, "parse_json", counted)
    return parsed


def test_judging_a_stream_with_every_check_parses_each_event_once(
    ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed = stream_exchange(WITH_TOOLS, tool_chunks([WEATHER_CALL]))
    counterpart = stream_exchange(HELLO, text_chunks())
    parsed = _counting_parses(monkeypatch)
    outcome = judge(replace(ctx, counterpart=counterpart), streamed, list(CHECKS))
    chunks = len(streamed.events) - 1  # all but [DONE]
    assert len(parsed) == chunks + len(counterpart.events) - 1
    assert {"chunks_valid", "consistent_ids", "tool_calls_assemble", "usage_consistent"} <= outcome.judged


def test_outside_a_judgement_an_exchange_is_read_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    streamed = stream_exchange(HELLO, text_chunks("Hi"))
    parsed = _counting_parses(monkeypatch)
    first = assemble_exchange(streamed)
    assert first is not None and first.content == "Hi"
    assert assemble_exchange(streamed) is not first  # nothing kept: a changed exchange is read as it is now
    assert len(parsed) == 2 * (len(streamed.events) - 1)
    assert streamed.readings is None


def test_one_reading_is_shared_inside_the_block_and_dropped_after() -> None:
    streamed = stream_exchange(HELLO, text_chunks("Hi"))
    with read_once(streamed):
        reading = read_exchange(streamed)
        assert read_exchange(streamed) is reading
        assert assemble_exchange(streamed) is reading.reply
        assert [index for index, _ in reading.chunks] == list(range(len(streamed.events) - 1))
    assert streamed.readings is None


def test_a_json_reply_reads_as_the_assembled_message() -> None:
    exchange = json_exchange({**HELLO, "stream": False}, 200, completion({"role": "assistant", "content": "Hello"}))
    with read_once(exchange):
        reading = read_exchange(exchange)
    assert reading.chunks == [] and reading.reply is not None and reading.reply.content == "Hello"
