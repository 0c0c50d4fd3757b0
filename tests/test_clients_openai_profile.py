"""Real client libraries, unmodified, against the mock's ``openai`` profile.

Each test drives a library the way its own docs do (no ``extra_body``, no wrapped transport) and asserts on
what the library hands back: text, tool calls, parsed objects. The replies come from the conversations in
``tests/clients/fixtures``, served without fallback, so a request a library words differently fails with the
mock's near misses instead of passing on a made-up reply. The Python libraries are the optional ``clients``
extra and each test skips without its own; the Node ones run from ``tests/clients`` after ``npm ci``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import serving_cli
from pydantic import BaseModel

CLIENTS = Path(__file__).resolve().parent / "clients"
FIXTURES = CLIENTS / "fixtures"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class City(BaseModel):
    """The small model every structured-output test extracts."""

    name: str
    population: int


# -- no address but loopback --------------------------------------------------------------------------


class _Guard:
    """Refuses, and records, any connect or name lookup off loopback while a test here runs.

    The machine has no network, so a library that phones home (a price list, telemetry) would hang
    until its timeout; this makes the attempt fail at once and the test name it. An audit hook sees
    every Python socket, asyncio's included. It cannot be removed, so it stays installed, idle, once
    the test is over.
    """

    def __init__(self) -> None:
        self.armed = False
        self.attempts: list[str] = []
        sys.addaudithook(self)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed:
            return
        if event == "socket.connect":
            sock, address = args
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
                self._refuse(f"connect to {address!r}")
        elif event == "socket.getaddrinfo" and args[0] is not None and not _loopback(args[0]):
            self._refuse(f"name lookup of {args[0]!r}")

    def _refuse(self, what: str) -> None:
        self.attempts.append(what)
        raise ConnectionRefusedError(f"test_clients_openai_profile: no network: {what}")


def _loopback(host: str | bytes) -> bool:
    name = host.decode() if isinstance(host, bytes) else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


_GUARD: _Guard | None = None


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Arm the guard around each test, imports of the client libraries included, then fail on any attempt."""
    global _GUARD
    if _GUARD is None:
        _GUARD = _Guard()
    _GUARD.attempts.clear()
    _GUARD.armed = True
    try:
        yield
    finally:
        _GUARD.armed = False
    assert not _GUARD.attempts, f"tried to leave loopback: {_GUARD.attempts}"


# -- the mock --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock() -> Iterator[str]:
    """``mockserver --profile openai`` as a user starts it, on a port it picks: its root URL (the API is under /v1).

    The command line, not an app in this process, so the profile is the one its flag selects, and the
    libraries under test share nothing with the server.
    """
    args = ("--profile", "openai", "--no-delay", "--port", "0", "--fixtures", str(FIXTURES), "--log-level", "warning")
    with serving_cli(*args, seconds=10) as cli:
        banner = cli.banner
        found = re.search(r"(http://127\.0\.0\.1:\d+)/v1\s.*\bprofile openai\b", banner)
        assert found, f"unexpected start-up line {banner!r}"
        yield found[1]


Journal = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def sent(mock: str) -> Journal:
    """The chat request bodies this test sent, oldest first (the journal is emptied when the test starts)."""
    httpx.delete(f"{mock}/__mock/requests").raise_for_status()

    def bodies() -> list[dict[str, Any]]:
        entries = httpx.get(f"{mock}/__mock/requests").json()["requests"]
        return [entry["body"] for entry in entries if entry["path"].endswith("/chat/completions")]

    return bodies


# -- litellm ---------------------------------------------------------------------------------------------


# litellm's import warns about its own TypedDicts (pydantic on ReadOnly items): noise, not about the mock.
quiet_litellm = pytest.mark.filterwarnings("ignore:Item.*ReadOnly:UserWarning", "ignore:Items.*ReadOnly:UserWarning")


@pytest.fixture
def litellm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """litellm with its bundled price list (it fetches one at import otherwise) and no telemetry."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("LITELLM_TELEMETRY", "False")
    module = pytest.importorskip("litellm", reason="litellm is in the optional clients extra")
    monkeypatch.setattr(module, "telemetry", False, raising=False)
    return module


@quiet_litellm
def test_litellm_completion_text(litellm: Any, mock: str, sent: Journal) -> None:
    """litellm leaves ``stream`` out: the profile must answer one JSON body, which litellm parses."""
    response = litellm.completion(
        model="openai/gpt-4o",
        api_base=f"{mock}/v1",
        api_key="test",
        messages=[{"role": "user", "content": "litellm: say hello."}],
        temperature=0,
        max_tokens=50,
        seed=7,
        user="user-1",
        num_retries=0,
    )
    assert response.choices[0].message.content == "Hello from the mock, by way of litellm."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert "stream" not in sent()[-1]


@quiet_litellm
def test_litellm_completion_n_choices(litellm: Any, mock: str) -> None:
    """``n=2`` gives two choices, each the fixture's reply."""
    response = litellm.completion(
        model="openai/gpt-4o",
        api_base=f"{mock}/v1",
        api_key="test",
        messages=[{"role": "user", "content": "litellm: say hello."}],
        n=2,
        num_retries=0,
    )
    assert [choice.index for choice in response.choices] == [0, 1]
    assert {choice.message.content for choice in response.choices} == {"Hello from the mock, by way of litellm."}


@quiet_litellm
def test_litellm_completion_tool_call_round_trip(litellm: Any, mock: str) -> None:
    """A tool call with the fixture's id and arguments, then the answer once litellm sends the result back."""
    messages: list[Any] = [{"role": "user", "content": "litellm: what is the weather in Oslo?"}]
    options: dict[str, Any] = {"model": "openai/gpt-4o", "api_base": f"{mock}/v1", "api_key": "test", "num_retries": 0}
    first = litellm.completion(messages=messages, tools=[WEATHER_TOOL], **options)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_oslo",
        "get_weather",
        {"city": "Oslo"},
    )
    messages += [message, {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'}]
    second = litellm.completion(messages=messages, tools=[WEATHER_TOOL], **options)
    assert second.choices[0].message.content == "It is 4 °C in Oslo."


# -- instructor ------------------------------------------------------------------------------------------

INSTRUCTOR_CASES = {
    # mode: (the prompt, the city its fixture answers with)
    "TOOLS": ("instructor TOOLS: describe Lyon.", City(name="Lyon", population=522250)),
    "JSON_SCHEMA": ("instructor JSON_SCHEMA: describe Nantes.", City(name="Nantes", population=323204)),
    "JSON": ("instructor JSON: describe Lille.", City(name="Lille", population=236710)),
}


@pytest.mark.parametrize("mode", list(INSTRUCTOR_CASES))
def test_instructor_extracts_the_fixture_object(mode: str, mock: str, sent: Journal) -> None:
    """Each mode asks differently (a forced tool, a json_schema format, json_object plus a schema prompt)."""
    instructor = pytest.importorskip("instructor", reason="instructor is in the optional clients extra")
    from openai import OpenAI

    prompt, expected = INSTRUCTOR_CASES[mode]
    with OpenAI(base_url=f"{mock}/v1", api_key="test", max_retries=0, timeout=10) as sdk:
        client = instructor.from_openai(sdk, mode=getattr(instructor.Mode, mode))
        city = client.chat.completions.create(
            model="gpt-4o", response_model=City, messages=[{"role": "user", "content": prompt}], max_retries=0
        )
    assert city.model_dump() == expected.model_dump()  # instructor attaches _raw_response, which == would compare
    body = sent()[-1]
    if mode == "TOOLS":
        assert body["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    elif mode == "JSON_SCHEMA":
        assert body["response_format"]["type"] == "json_schema"
    else:
        assert body["response_format"] == {"type": "json_object"}


# -- LangChain -------------------------------------------------------------------------------------------


def test_langchain_structured_output_json_mode(mock: str, sent: Journal) -> None:
    """``with_structured_output(method="json_mode")`` sends ``json_object`` and parses the reply into the model."""
    langchain_openai = pytest.importorskip(
        "langchain_openai", reason="langchain-openai is in the optional clients extra"
    )
    llm = langchain_openai.ChatOpenAI(
        model="gpt-4o", base_url=f"{mock}/v1", api_key="test", max_retries=0, temperature=0
    )
    city = llm.with_structured_output(City, method="json_mode").invoke(
        "langchain json_mode: describe Bordeaux as JSON."
    )
    assert city == City(name="Bordeaux", population=261804)
    assert sent()[-1]["response_format"] == {"type": "json_object"}


# -- pydantic-ai -----------------------------------------------------------------------------------------


def test_pydantic_ai_prompted_output(mock: str, sent: Journal) -> None:
    """PromptedOutput puts the schema in a system prompt and asks for ``json_object``; the output is the model."""
    pytest.importorskip("pydantic_ai", reason="pydantic-ai-slim[openai] is in the optional clients extra")
    from pydantic_ai import Agent, PromptedOutput
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("gpt-4o", provider=OpenAIProvider(base_url=f"{mock}/v1", api_key="test"))
    agent = Agent(model, output_type=PromptedOutput(City), model_settings={"temperature": 0, "max_tokens": 100})
    result = agent.run_sync("pydantic-ai: describe Toulouse.")
    assert result.output == City(name="Toulouse", population=504078)
    [body] = sent()  # one request: no output retry was needed
    assert body["response_format"] == {"type": "json_object"}


# -- the openai-python README's streaming loop ---------------------------------------------------------------


def test_readme_streaming_loop_without_include_usage(
    mock: str, sent: Journal, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README indexes ``chunk.choices[0]`` on every chunk: no usage chunk (``choices: []``) may come unasked."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{mock}/v1", api_key="test", max_retries=0, timeout=10)
    for chunk in client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Stream a greeting."}], stream=True
    ):
        print(chunk.choices[0].delta.content or "")
    client.close()
    printed = capsys.readouterr().out
    assert printed.replace("\n", "") == "Hello! This reply arrives one token at a time, and every chunk has a choice."
    assert printed.count("\n") > 10  # token by token, not one piece
    assert "stream_options" not in sent()[-1]


def test_streaming_usage_chunk_when_asked(mock: str) -> None:
    """With ``include_usage`` the last chunk is the usage one, with no choices, as OpenAI sends it."""
    from openai import OpenAI

    with OpenAI(base_url=f"{mock}/v1", api_key="test", max_retries=0, timeout=10) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "Stream a greeting."}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert [chunk.choices for chunk in chunks].count([]) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])


# -- Node: openai-node and the Vercel AI SDK -----------------------------------------------------------------


def run_node(script: str, mock: str) -> dict[str, Any]:
    """Run ``tests/clients/SCRIPT`` with the mock's API URL; it prints one JSON line, returned parsed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    if not (CLIENTS / "node_modules").is_dir():
        pytest.skip("tests/clients/node_modules is missing: run npm ci --prefix tests/clients")
    done = subprocess.run(
        [node, script, f"{mock}/v1"], cwd=CLIENTS, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_openai_node_parse_with_zod_response_format(mock: str, sent: Journal) -> None:
    """openai-node v6 ``chat.completions.parse`` with ``zodResponseFormat``: ``message.parsed`` is the fixture's."""
    out = run_node("openai_parse.mjs", mock)
    assert out == {
        "parsed": {"name": "Nice", "population": 342669},
        "content": '{"name": "Nice", "population": 342669}',
        "finish_reason": "stop",
    }
    assert sent()[-1]["response_format"]["json_schema"]["strict"] is True


def test_ai_sdk_generate_text(mock: str, sent: Journal) -> None:
    """AI SDK ``generateText``: the reply text; a reasoning model's system prompt goes out as ``developer``."""
    assert run_node("ai_generate_text.mjs", mock) == {
        "text": "Hello from the mock, by way of the AI SDK.",
        "finishReason": "stop",
    }
    assert [message["role"] for message in sent()[-1]["messages"]] == ["developer", "user"]


def test_ai_sdk_generate_object(mock: str) -> None:
    """AI SDK ``generateObject`` with a zod schema: the object the fixture's JSON holds."""
    assert run_node("ai_generate_object.mjs", mock) == {
        "object": {"name": "Rennes", "population": 222485},
        "finishReason": "stop",
    }
