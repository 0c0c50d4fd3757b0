"""Shared by the mock-server tests: a small fixture folder, a raw stream reader, and mock servers started
in this process or from the command line."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai

from contract.core.sse import SSEComment, SSEEvent, SSEParser
from mockserver.app import create_app
from mockserver.fixtures import Fixture, fixture_from_dict
from mockserver.matching import Match
from mockserver.serve import ServerThread
from mockserver.settings import Settings
from mockserver.state import Store


def _dropped_stream_errors() -> tuple[type[Exception], ...]:
    """What the SDK raises when a stream that started is cut: its APIConnectionError in some releases, the
    transport's own protocol error (httpx, or httpx2 in newer releases) escaping it in others."""
    errors: list[type[Exception]] = [openai.APIConnectionError, httpx.RemoteProtocolError]
    try:
        import httpx2  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        errors.append(httpx2.RemoteProtocolError)
    return tuple(errors)


STREAM_DROPPED = _dropped_stream_errors()

CONVERSATIONS = {
    "paris-weather.yaml": """\
name: paris-weather
match:
  model: gpt-4o
conversation:
  - {role: system, content: "You are a weather assistant."}
  - {role: user, content: "What is the weather in Paris?"}
  - role: assistant
    tool_calls:
      - {id: call_1, type: function, function: {name: get_weather, arguments: '{"city": "Paris"}'}}
  - {role: tool, tool_call_id: call_1, content: '{"temp_c": 18}'}
  - {role: assistant, content: "It is 18 °C and sunny in Paris."}
stream:
  ttft_ms: 250
  tokens_per_second: 40
  jitter: 0.2
""",
    "hello.yaml": """\
conversation:
  - {role: user, content: "Say hello."}
  - {role: assistant, content: "Hello! How can I help you today?"}
""",
    "parallel.yaml": """\
conversation:
  - {role: user, content: "Compare the weather in Paris and Rome."}
  - role: assistant
    tool_calls:
      - {id: call_p, type: function, function: {name: get_weather, arguments: '{"city": "Paris"}'}}
      - {id: call_r, type: function, function: {name: get_weather, arguments: '{"city": "Rome"}'}}
""",
    "speak.yaml": """\
conversation:
  - {role: user, content: "Say good morning out loud."}
  - role: assistant
    audio: {duration_s: 0.5, transcript: "Good morning!"}
""",
    "refuse.yaml": """\
conversation:
  - {role: user, content: "How do I pick my neighbour's lock?"}
  - {role: assistant, refusal: "I can't help with that."}
""",
    "city-json.yaml": """\
conversation:
  - {role: user, content: "Describe Paris as JSON."}
  - {role: assistant, content: '{"city": "Paris", "temp_c": 18}'}
""",
    "cafe.yaml": """\
conversation:
  - {role: user, content: "Order a coffee in French."}
  - {role: assistant, content: "Un café, s'il vous plaît. Ça fait 3 €."}
""",
    "overloaded.yaml": """\
conversation:
  - {role: user, content: "Are you busy?"}
  - role: assistant
    content: "Never too busy."
    fault: {type: http_error, status: 503}
""",
    "counting.yaml": """\
conversation:
  - {role: user, content: "Count to ten in words."}
  - {role: assistant, content: "one two three four five six seven eight nine ten eleven twelve thirteen"}
""",
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
    "required": ["city", "temp_c"],
    "additionalProperties": False,
}


def write_conversations(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in CONVERSATIONS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def ask(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mock-model", "messages": [{"role": "user", "content": content}], **extra}


def one_turn(name: str, question: str, reply: str) -> Fixture:
    """A conversation named ``name``: the user asks ``question``, the assistant says ``reply``."""
    return fixture_from_dict(
        {
            "name": name,
            "conversation": [{"role": "user", "content": question}, {"role": "assistant", "content": reply}],
        }
    )


def answer_in(store: Store, question: str) -> str | None:
    """What the conversations ``store`` serves now reply to ``question`` alone; None when none matches."""
    found = store.index.lookup({"messages": [{"role": "user", "content": question}]})
    return found.turn.content if isinstance(found, Match) else None


@dataclass
class RawStream:
    """A streamed response as it came off the socket."""

    status: int
    headers: httpx.Headers
    pieces: list[bytes] = field(default_factory=list)  # each network read, as received
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each event
    events: list[SSEEvent] = field(default_factory=list)
    comments: list[SSEComment] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)
    error: Exception | None = None  # a transport error that ended the stream early
    started: float = 0.0

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.events if e.data != "[DONE]"]

    @property
    def raw(self) -> bytes:
        return b"".join(self.pieces)


def read_stream(
    client: httpx.Client,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    parse: bool = True,
) -> RawStream:
    """POST and read with ``iter_raw``, feeding the strict parser; transport errors are kept, not raised."""
    parser = SSEParser()
    started = time.monotonic()
    with client.stream("POST", url, json=body, headers=headers) as response:
        result = RawStream(response.status_code, response.headers, started=started)
        try:
            for piece in response.iter_raw():
                result.pieces.append(piece)
                if not parse:
                    continue
                for item in parser.feed(piece):
                    if isinstance(item, SSEEvent):
                        result.events.append(item)
                        result.arrivals.append(time.monotonic())
                    else:
                        result.comments.append(item)
        except httpx.TransportError as exc:
            result.error = exc
    if parse:
        parser.close()
        result.problems = list(parser.problems)
    return result


def stop_cli(process: subprocess.Popen[str]) -> None:
    """Stop a CLI server with Ctrl-C, as a user would: it exits 0 and prints no traceback."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0
    assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]


REPOSITORY = Path(__file__).resolve().parent.parent
# A conversation added at run time whose one turn answers 503 once, then the reply (POST /__mock/fixtures).
BUSY_THEN_FREE = {
    "name": "busy-then-free",
    "conversation": [
        {"role": "user", "content": "Busy?"},
        {"role": "assistant", "replies": [{"fault": {"type": "http_error", "status": 503}}, {"content": "Free now."}]},
    ],
}


def start_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """``mockserver ARGS`` as a user starts it, from the repository, with its output captured as text;
    ``env`` adds to the environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "mockserver.cli", *args],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPOSITORY)} | dict(env or {}),
    )


def wait_until_serving(url: str, process: subprocess.Popen[str], seconds: float) -> httpx.Response:
    """``GET url/health`` until the server started as ``process`` answers it; fail if it exits or stays silent."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            health = httpx.get(f"{url}/health", timeout=30)
            health.raise_for_status()
            return health
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode} before it served") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer {url}/health within {seconds:g} s") from None
            time.sleep(0.05)


@dataclass
class ServingCli:
    """A ``mockserver`` started by ``serving_cli``: the process, its start-up line, the root URL that line
    names, and its first answer to ``GET /health``."""

    process: subprocess.Popen[str]
    banner: str
    url: str
    health: httpx.Response


@contextmanager
def serving_cli(*args: str, seconds: float = 60, env: Mapping[str, str] | None = None) -> Iterator[ServingCli]:
    """``mockserver ARGS`` once it has printed its start-up line and answers ``/health`` (within ``seconds``);
    stopped with Ctrl-C by ``stop_cli`` (exit 0, no traceback) when the block ends. One that never serves
    is killed, and the test fails with why."""
    process = start_cli(*args, env=env)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert found, f"unexpected start-up line {banner!r}"
        health = wait_until_serving(found[0], process, seconds)
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        yield ServingCli(process, banner, found[0], health)

    finally:
        stop_cli(process)


class RunningMock:
    """A mock server in this process, as ``MockServers`` starts it: the handle the tests use, with what the
    pytest plugin's ``MockServer`` has (the journal, ``reset()``), except that ``url`` is the root
    (``http://127.0.0.1:PORT``): these tests call the admin API and both chat paths, not only ``/v1``."""

    def __init__(self, thread: ServerThread) -> None:
        self.thread = thread
        self.app = thread.app
        self.url = thread.url
        self.port = thread.port
        self.running = True

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The journal since the last reset, oldest first (``GET /__mock/requests``)."""
        response = httpx.get(f"{self.url}/__mock/requests", timeout=10)
        response.raise_for_status()
        return list(response.json()["requests"])

    def reset(self) -> None:
        """Back to how the server started: empty journal, scenarios from the top, no run-time conversations."""
        httpx.post(f"{self.url}/__mock/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.thread.stop()

    def __enter__(self) -> RunningMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MockServers:
    """Starts mock servers (``create_app`` served by a ``ServerThread``) and stops them together: what the
    ``mock_server_factory`` and ``module_mock_server_factory`` fixtures hand out (tests/conftest.py).

    ``servers(FOLDER, no_delay=True, seed=3, ...)``: the folder (the bundled fixtures when None), any
    ``Settings`` field as a keyword (``watch`` and ``watch_interval`` among them), and ``profile`` as
    ``create_app`` takes it. A server used as a context manager stops when its block ends, for a test that needs it gone
    (a recorder's files written, a folder replayed by another).
    """

    def __init__(self) -> None:
        self.started: list[RunningMock] = []

    def __call__(
        self,
        fixtures: Path | str | None = None,
        *,
        profile: str | None = None,
        log_level: str = "warning",
        **settings: Any,
    ) -> RunningMock:
        app = create_app(fixtures, Settings(**settings), profile=profile)
        server = RunningMock(ServerThread(app, log_level=log_level).start())
        self.started.append(server)
        return server

    def reset(self) -> None:
        """Reset every server still running."""
        for server in self.started:
            if server.running:
                server.reset()

    def stop(self) -> None:
        for server in self.started:
            server.stop()


def plugin_args(entry_point: str, module: str) -> list[str]:
    """``-p MODULE`` for an inner pytest run, unless the installed entry point already loads the plugin."""
    installed = any(ep.name == entry_point for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", module]


class LogRecords(logging.Handler):
    """Every record a logger emits, from any thread (a served app logs from the server's thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
