"""A turn rendered once and finished per request sends exactly the bytes of a whole rendering."""

from __future__ import annotations

import asyncio
import random

import pytest

from mockserver.faults import DISCONNECT, Write
from mockserver.prepared import ReplyBytes, encode_json
from mockserver.stream import ReplyIdentity, compute_usage, render_chunks, render_completion
from mockserver.turns import AssistantTurn
from mockserver.wire import play

MESSAGES = [{"role": "user", "content": "Wie ist das Wetter in München?"}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}}
TURNS = {
    "text": AssistantTurn(content="Es ist sonnig in München, 21 °C — «schön»."),
    "refusal": AssistantTurn(refusal="I can't help with that."),
    "tool calls": AssistantTurn(tool_calls=(CALL, {**CALL, "id": "call_2"})),
    "text and a call": AssistantTurn(content="Checking.", tool_calls=(CALL,)),
    "finish reason and usage": AssistantTurn(
        content="Cut", finish_reason="length", usage={"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}
    ),
    "empty text": AssistantTurn(content=""),
}


@pytest.mark.parametrize("name", TURNS)
def test_prepared_bytes_are_the_whole_rendering(name: str) -> None:
    turn = TURNS[name]
    for seed, model in ((1, "gpt-4o"), (2, 'modèle "quoted"')):  # the second request reuses the first's rendering
        identity = ReplyIdentity.new(random.Random(seed), model, 1_700_000_000 + seed)
        usage = compute_usage(MESSAGES, turn)
        rendered = ReplyBytes(turn, identity, usage)
        chunks = render_chunks(turn, identity, usage)
        assert rendered.events == [chunk.encode() for chunk in chunks]
        assert rendered.paced == tuple(chunk.paced for chunk in chunks)
        assert rendered.completion() == encode_json(render_completion(turn, identity, usage))
    assert "prepared" in turn.rendered, "the shared rendering is kept on the turn"


def _played(writes: list) -> list[tuple[float, object]]:
    async def collect() -> list[tuple[float, object]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        return [(loop.time() - start, piece) async for piece in play(writes)]

    return asyncio.run(collect())


def test_writes_due_together_go_out_as_one() -> None:
    played = _played([Write(0.0, b"a"), Write(0.0, b"b"), Write(0.0, b"c")])
    assert [piece for _, piece in played] == [b"abc"]


def test_a_wait_separates_writes_and_a_disconnect_flushes_first() -> None:
    played = _played([Write(0.0, b"role"), Write(0.05, b"one"), Write(0.0, b"two"), Write(0.05, b"three"), DISCONNECT])
    assert [piece for _, piece in played] == [b"role", b"onetwo", b"three", DISCONNECT]
    times = [at for at, _ in played]
    assert times[1] >= 0.045 and times[2] >= 0.095, "each write waits for its planned time"
