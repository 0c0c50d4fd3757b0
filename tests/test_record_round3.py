"""The recorder against upstreams that stress it: what it writes must load, and it must stay responsive.

Every file the recorder writes is loaded back with the start-up loader; clients that give up
must not leave upstream requests holding the pool; compressed, huge and endless replies are
relayed within bounded memory and without stalling the event loop; files get the user's umask.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import json
import logging
import os
import resource
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import MockServers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from contract.core.sse import SSEEvent
from mockserver.fixtures import MAX_FIXTURE_BYTES, Fixture, load_fixture_file, load_fixtures
from mockserver.recording import capture as capture_module
from mockserver.recording import recorder as recording
from mockserver.recording.capture import MAX_RECORDED_BYTES, Capture
from mockserver.recording.recorder import Upstream, create_recorder_app
from mockserver.serve import ServerThread

BOMB_BYTES = 300 * 2**20  # what the gzip bomb unpacks to
BIG_WRITE_BYTES = 4 * 2**20  # a reply whose file takes seconds to check and write
STREAMED_EVENTS = 20_000


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"  # ensure_ascii: a lone surrogate stays an escape


def _stream(*contents: str, usage: dict[str, Any] | None = None) -> list[bytes]:
    pieces = [_chunk({"role": "assistant", "content": ""})]
    pieces += [_chunk({"content": text}) for text in contents]
    pieces.append(_chunk({}, finish="stop"))
    if usage is not None:
        pieces.append(
            b"data: "
            + json.dumps(
                {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": []}
                | {"usage": usage}
            ).encode()
            + b"\n\n"
        )
    return [*pieces, b"data: [DONE]\n\n"]


def _completion(content: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage or {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"0" * 2**20
    return b"".join([*(packer.compress(block) for _ in range(BOMB_BYTES // len(block))), packer.flush()])


async def _pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(0)


async def _many_events() -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    event = _chunk({"content": "tick "})
    for start in range(0, STREAMED_EVENTS, 500):
        yield event * min(500, STREAMED_EVENTS - start)
        await asyncio.sleep(0)
    yield _chunk({}, finish="stop") + b"data: [DONE]\n\n"


class Upstream3:
    """A bare upstream whose answer depends on the last user message; ``hang`` never sends headers."""

    def __init__(self) -> None:
        self.bomb = b""
        self.hanging = 0  # requests held without an answer, until their client leaves
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        said = body["messages"][-1]["content"]
        sse = {"content-type": "text/event-stream"}
        if said == "hang":
            self.hanging += 1
            while not await request.is_disconnected():
                await asyncio.sleep(0.05)
            self.hanging -= 1
            return Response(status_code=204)
        if said == "party":
            return StreamingResponse(_pieces(_stream("Party ", "\ud83c", "\udf89", "!")), headers=sse)
        if said == "oversize":
            return JSONResponse(_completion("x" * (MAX_FIXTURE_BYTES + 2**20)))
        if said == "huge usage":
            count = 10**150
            return JSONResponse(
                _completion("Counted.", {"prompt_tokens": count, "completion_tokens": 1, "total_tokens": count + 1})
            )
        if said == "bomb":
            return Response(self.bomb, headers={"content-type": "application/json", "content-encoding": "gzip"})
        if said == "big":
            return StreamingResponse(_pieces(_stream("w" * BIG_WRITE_BYTES)), headers=sse)
        if said == "many":
            return StreamingResponse(_many_events(), headers=sse)
        return StreamingResponse(_pieces(_stream(f"You said: {said}.")), headers=sse)


def _ask(text: str, stream: bool = True) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": stream}


def _content(raw: bytes) -> str:
    """The text of a relayed stream, as a client's JSON parser joins it."""
    text = ""
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    return text


def _last_reply(fixture: Fixture) -> str | None:
    return fixture.turns[max(fixture.turns)].content


def _recorded(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.yaml"))


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream3, ServerThread]]:
    fake = Upstream3()
    with ServerThread(fake.app) as running:
        yield fake, running


# -- 1. every written file loads with the start-up loader ------------------------------------------


def test_surrogate_halves_in_two_chunks_are_recorded_as_the_character(
    mock_server_factory: MockServers, tmp_path: Path, upstream: tuple[Upstream3, ServerThread]
) -> None:
    recorded = tmp_path / "recorded"
    with (
        ServerThread(create_recorder_app(Upstream.parse(upstream[1].url), recorded)) as recorder,
        httpx.Client(timeout=10) as http,
    ):
        reply = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("party"))
    assert reply.status_code == 200 and b"\\ud83c" in reply.content  # relayed as the upstream sent it
    (path,) = _recorded(recorded)
    text = path.read_text(encoding="utf-8")
    assert "Party 🎉!" in text and "\\u" not in text.lower()
    assert _last_reply(load_fixture_file(path)) == "Party 🎉!"
    with mock_server_factory(recorded, no_delay=True) as replay, httpx.Client(timeout=10) as http:
        again = http.post(f"{replay.url}/v1/chat/completions", json=_ask("party"))
    assert again.status_code == 200 and _content(again.content) == "Party 🎉!"


def test_what_the_loader_would_refuse_is_relayed_but_not_written(
    tmp_path: Path, upstream: tuple[Upstream3, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    recorded = tmp_path / "recorded"
    caplog.set_level(logging.WARNING, logger="mockserver.record")
    with (
        ServerThread(create_recorder_app(Upstream.parse(upstream[1].url), recorded)) as recorder,
        httpx.Client(timeout=30) as http,
    ):
        oversize = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("oversize", stream=False))
        counted = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("huge usage", stream=False))
        hello = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("hello"))
    assert oversize.status_code == 200
    assert len(oversize.json()["choices"][0]["message"]["content"]) == MAX_FIXTURE_BYTES + 2**20
    assert counted.status_code == 200 and counted.json()["usage"]["prompt_tokens"] == 10**150
    assert hello.status_code == 200
    (only,) = load_fixtures(recorded)  # the folder still loads: only the reply that fits was written
    assert _last_reply(only) == "You said: hello."
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not recorded")]
    assert any("more than the 10 MB a fixture file may have" in line for line in refusals), refusals
    assert any("151 digits" in line for line in refusals), refusals


# -- 2. clients that give up take their upstream requests with them --------------------------------


def _recorder_with_pool(upstream_url: str, folder: Path, size: int, pool_wait: float) -> Starlette:
    timeout = httpx.Timeout(connect=5.0, read=300.0, write=5.0, pool=pool_wait)
    app = create_recorder_app(Upstream.parse(upstream_url), folder, timeout=timeout)
    app.state.recorder.limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    return app


def _give_up(url: str) -> None:
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=httpx.Timeout(5.0, read=0.5)) as http:
        http.post(url, json=_ask("hang"))


def test_clients_that_give_up_free_the_upstream_pool(tmp_path: Path, upstream: tuple[Upstream3, ServerThread]) -> None:
    """Pool of 4, 6 clients that give up after 0.5 s on an upstream that never answers: the next request is served."""
    app = _recorder_with_pool(upstream[1].url, tmp_path / "recorded", size=4, pool_wait=3.0)
    with ServerThread(app) as recorder:
        url = f"{recorder.url}/v1/chat/completions"
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(_give_up, [url] * 6))
        deadline = time.monotonic() + 2.0
        while upstream[0].hanging and time.monotonic() < deadline:
            time.sleep(0.02)
        still_open = upstream[0].hanging
        started = time.monotonic()
        with httpx.Client(timeout=10) as http:
            reply = http.post(url, json=_ask("hello"))
        waited = time.monotonic() - started
    print(
        f"\nafter 6 clients gave up on a pool of 4: {still_open} upstream requests still open, "
        f"the next request took {waited * 1000:.0f} ms"
    )
    assert still_open == 0, "the proxy cancels the upstream request of a client that left"
    assert reply.status_code == 200, reply.text
    assert waited < 2.0


def test_a_pool_that_is_full_says_so(tmp_path: Path, upstream: tuple[Upstream3, ServerThread]) -> None:
    app = _recorder_with_pool(upstream[1].url, tmp_path / "recorded", size=1, pool_wait=0.3)
    with ServerThread(app) as recorder:
        url = f"{recorder.url}/v1/chat/completions"
        holder = threading.Thread(target=lambda: _give_up_later(url))
        holder.start()
        time.sleep(0.3)
        with httpx.Client(timeout=10) as http:
            reply = http.post(url, json=_ask("hello"))
        holder.join()
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "upstream_unavailable" and "pool exhausted" in error["message"], error


def _give_up_later(url: str) -> None:
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=httpx.Timeout(5.0, read=1.5)) as http:
        http.post(url, json=_ask("hang"))


# -- 3. bounded memory, a free event loop, files written beside the stream -------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_gzip_bomb_is_relayed_within_bounded_memory_and_health_stays_quick(
    tmp_path: Path, upstream: tuple[Upstream3, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    fake, running = upstream
    fake.bomb = _bomb()
    caplog.set_level(logging.WARNING, logger="mockserver.record")
    recorded = tmp_path / "recorded"
    latencies: list[float] = []
    with ServerThread(create_recorder_app(Upstream.parse(running.url), recorded)) as recorder:
        done = threading.Event()

        def poll_health() -> None:
            with httpx.Client(timeout=30) as http:
                while not done.is_set():
                    started = time.monotonic()
                    assert http.get(f"{recorder.url}/health").status_code == 200
                    latencies.append(time.monotonic() - started)
                    time.sleep(0.02)

        poller = threading.Thread(target=poll_health)
        before = _peak_rss_mb()
        poller.start()
        received = 0
        started = time.monotonic()
        with (
            httpx.Client(timeout=60) as http,
            http.stream("POST", f"{recorder.url}/v1/chat/completions", json=_ask("bomb", stream=False)) as reply,
        ):
            for piece in reply.iter_raw():
                received += len(piece)
        took = time.monotonic() - started
        done.set()
        poller.join()
    grown = _peak_rss_mb() - before
    print(
        f"\ngzip bomb of {len(fake.bomb) // 1024} kB unpacking to {BOMB_BYTES // 2**20} MB: relayed in {took:.1f} s, "
        f"peak RSS grew {grown:.0f} MB, slowest /health {max(latencies) * 1000:.0f} ms over {len(latencies)} polls"
    )
    assert reply.status_code == 200 and received == BOMB_BYTES
    assert grown < MAX_RECORDED_BYTES / 2**20 + 100, grown
    assert max(latencies) < 1.0
    assert not _recorded(recorded)
    assert any("recording limit" in r.getMessage() for r in caplog.records)


def test_a_long_write_holds_up_neither_its_client_nor_another_recording(
    tmp_path: Path, upstream: tuple[Upstream3, ServerThread]
) -> None:
    recorded = tmp_path / "recorded"
    times: dict[str, float] = {}
    with ServerThread(create_recorder_app(Upstream.parse(upstream[1].url), recorded)) as recorder:
        url = f"{recorder.url}/v1/chat/completions"

        def ask(text: str) -> None:
            started = time.monotonic()
            with httpx.Client(timeout=60) as http:
                assert http.post(url, json=_ask(text)).status_code == 200
            times[text] = time.monotonic() - started
            times[f"{text} file"] = float(any(text in path.name for path in _recorded(recorded)))

        big = threading.Thread(target=ask, args=("big",))
        big.start()
        deadline = time.monotonic() + 30
        while "big" not in times and time.monotonic() < deadline:
            time.sleep(0.01)
        big.join()
        ask("small")
        small_file = times["small file"]
        while not any("big" in path.name for path in _recorded(recorded)) and time.monotonic() < deadline:
            time.sleep(0.05)
        written = time.monotonic()
    print(
        f"\n{BIG_WRITE_BYTES // 2**20} MB reply: its client done in {times['big']:.2f} s; a small recording after it "
        f"took {times['small']:.2f} s; the big file was there {written - deadline + 30:.1f} s after the start"
    )
    assert times["big"] < recording.WRITE_WAIT + 1.5, "the client's stream waits for its file at most WRITE_WAIT"
    assert small_file and times["small"] < 1.0, "a small recording does not wait for another file being written"
    assert any("big" in path.name for path in _recorded(recorded)), "the long write finishes after the client"


def test_a_stream_past_the_recording_limit_is_relayed_and_not_kept(
    tmp_path: Path,
    upstream: tuple[Upstream3, ServerThread],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(capture_module, "MAX_RECORDED_BYTES", 2**20)
    caplog.set_level(logging.WARNING, logger="mockserver.record")
    recorded = tmp_path / "recorded"
    with (
        ServerThread(create_recorder_app(Upstream.parse(upstream[1].url), recorded)) as recorder,
        httpx.Client(timeout=60) as http,
    ):
        reply = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("many"))
    assert reply.status_code == 200 and _content(reply.content) == "tick " * STREAMED_EVENTS
    assert reply.content.endswith(b"data: [DONE]\n\n")
    assert not _recorded(recorded)
    assert any("recording limit" in r.getMessage() for r in caplog.records)


def test_a_capture_stops_keeping_events_past_the_limit() -> None:
    """A million small events: what is kept stays under the limit, then is dropped altogether."""
    capture = Capture({}, 200, stream=True)
    event = SSEEvent(data='{"choices":[{"index":0,"delta":{"content":"a"}}]}')
    for number in range(1_000_000):
        capture.keep(number / 1000, event)
    assert capture.too_large and capture.arrivals == []
    assert capture.kept <= MAX_RECORDED_BYTES + len(event.data) + capture_module.EVENT_COST


def test_recorded_files_follow_the_umask(tmp_path: Path, upstream: tuple[Upstream3, ServerThread]) -> None:
    recorded = tmp_path / "recorded"
    previous = os.umask(0o022)
    try:
        with (
            ServerThread(create_recorder_app(Upstream.parse(upstream[1].url), recorded)) as recorder,
            httpx.Client(timeout=10) as http,
        ):
            assert http.post(f"{recorder.url}/v1/chat/completions", json=_ask("hello")).status_code == 200
    finally:
        os.umask(previous)
    (path,) = _recorded(recorded)
    assert path.stat().st_mode & 0o777 == 0o644


def test_gzip_replies_within_the_limit_are_recorded(tmp_path: Path) -> None:
    """The proxy unpacks what it relays: a gzip JSON reply reaches the client decoded and is recorded."""

    async def chat(request: Request) -> Response:
        body = json.dumps(_completion("Packed and unpacked.")).encode()
        return Response(gzip.compress(body), headers={"content-type": "application/json", "content-encoding": "gzip"})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    recorded = tmp_path / "recorded"
    with (
        ServerThread(app) as packed,
        ServerThread(create_recorder_app(Upstream.parse(packed.url), recorded)) as recorder,
        httpx.Client(timeout=10) as http,
    ):
        reply = http.post(f"{recorder.url}/v1/chat/completions", json=_ask("pack", stream=False))
    assert "content-encoding" not in reply.headers
    assert reply.json()["choices"][0]["message"]["content"] == "Packed and unpacked."
    (fixture,) = load_fixtures(recorded)
    assert _last_reply(fixture) == "Packed and unpacked."
