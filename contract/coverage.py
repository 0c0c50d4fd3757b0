"""The coverage phase: a fixed set of requests that reaches every semantic rule, whatever the seed.

Random draws rarely land where semantic rules live (``parallel_tool_calls:
false`` with two tools a model would call together; ``tool_choice: "none"``
beside a tool the prompt asks for), so a broken server could pass under one
seed and fail under another. This module enumerates the request features the
semantic checks depend on, every pair of values at least once (a greedy
all-pairs covering, deterministic), and builds a concrete request for each
row. The phase sends them first, before any generated request.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .strategies import IMAGE_URLS, wav_bytes

STREAM_MODES = ("absent", "true", "false", "pair")  # pair: stream true, then the same request with false

# Prompts that ask for what the tools do, so a model (or a mock) has a reason to call them, in parallel
# when allowed; none of them is a bundled fixture's prompt.
TOOL_PROMPT = "Check the weather in Lyon, the local time in Osaka, and convert 20 EUR to JPY."
PLAIN_PROMPTS = ("Name three rivers in Europe.", "Write one sentence about the sea.")
JSON_PROMPT = "Describe a city you like as JSON."
AUDIO_PROMPT = "Read this sentence aloud: the train leaves at nine."


@dataclass(frozen=True)
class CoverageCase:
    """One request of the phase, the features it was built from, and whether to send its counterpart."""

    body: dict[str, Any]
    features: Mapping[str, Any]
    with_counterpart: bool = False


def all_pairs(factors: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows that hold every pair of values of every two factors at least once (greedy, deterministic).

    Each row starts from the first pair not yet covered; every other factor takes the value that covers
    the most new pairs with what the row already holds (the first such value on a tie).
    """
    names = list(factors)
    position = {name: i for i, name in enumerate(names)}

    def key(a: str, va: int, b: str, vb: int) -> tuple[str, int, str, int]:
        return (a, va, b, vb) if position[a] < position[b] else (b, vb, a, va)

    uncovered = {
        (a, va, b, vb)
        for a, b in itertools.combinations(names, 2)
        for va in range(len(factors[a]))
        for vb in range(len(factors[b]))
    }
    rows: list[dict[str, Any]] = []
    while uncovered:
        a, va, b, vb = min(uncovered, key=lambda pair: (position[pair[0]], pair[1], position[pair[2]], pair[3]))
        row = {a: va, b: vb}
        for name in names:
            if name not in row:
                row[name] = max(
                    range(len(factors[name])),
                    key=lambda v: (sum(key(name, v, other, ov) in uncovered for other, ov in row.items()), -v),
                )
        uncovered -= {key(x, row[x], y, row[y]) for x, y in itertools.combinations(names, 2)}
        rows.append({name: factors[name][row[name]] for name in names})
    return rows


# -- concrete pieces --------------------------------------------------------------------------


def _tool(name: str, description: str, properties: dict[str, Any], strict: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties)}
    if strict:
        parameters["additionalProperties"] = False
    function: dict[str, Any] = {"name": name, "description": description, "parameters": parameters}
    if strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def tools(count: int, strict: bool) -> list[dict[str, Any]]:
    """The first ``count`` of three tools the tool prompt asks for, typed, with enums and numbers."""
    every = [
        _tool(
            "get_weather",
            "Current weather for a city",
            {"city": {"type": "string"}, "units": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            strict,
        ),
        _tool("get_local_time", "Local time for a city", {"city": {"type": "string"}}, strict),
        _tool(
            "convert_currency",
            "Convert an amount of money",
            {
                "amount": {"type": "number"},
                "from": {"type": "string", "enum": ["EUR", "USD", "JPY"]},
                "to": {"type": "string", "enum": ["EUR", "USD", "JPY"]},
            },
            strict,
        ),
    ]
    return every[:count]


RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "nested-object": {
        "type": "object",
        "required": ["city", "weather"],
        "properties": {
            "city": {"type": "string"},
            "weather": {"type": "object", "required": ["temp_c"], "properties": {"temp_c": {"type": "number"}}},
        },
    },
    "array": {
        "type": "object",
        "required": ["rivers"],
        "properties": {"rivers": {"type": "array", "minItems": 1, "items": {"type": "string"}}},
    },
    "enum": {
        "type": "object",
        "required": ["mood"],
        "properties": {"mood": {"type": "string", "enum": ["happy", "calm", "tired"]}},
    },
    "closed": {
        "type": "object",
        "required": ["name", "population"],
        "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
    },
}


def strict_schema(schema: Any) -> Any:
    """The schema as strict structured outputs want it: every object closed, every property required."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_schema(value) for key, value in schema.items()}
    if out.get("type") == "object" and isinstance(out.get("properties"), dict):
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out


def _user_turn(kind: str, text: str) -> dict[str, Any]:
    if kind == "image":
        return {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": IMAGE_URLS[0]}],
        }
    if kind == "audio-input":
        data = base64.b64encode(wav_bytes()).decode("ascii")
        return {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
            ],
        }
    return {"role": "user", "content": text}


def _conversation(kind: str, text: str) -> list[dict[str, Any]]:
    """One user turn (plain, with an image, with audio), or a tool round sent back with its result."""
    system = {"role": "system", "content": "You are a helpful assistant. Use the tools when they help."}
    if kind != "tool-result":
        return [system, _user_turn(kind, text)]
    call = {
        "id": "call_cov_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Lyon", "units": "celsius"}'},
    }
    return [
        system,
        {"role": "user", "content": text},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_cov_1", "content": '{"temp_c": 14, "sky": "cloudy"}'},
        {"role": "user", "content": "Thanks. And the rest?"},
    ]


def _with_stream(body: dict[str, Any], mode: str) -> tuple[dict[str, Any], bool]:
    if mode in ("true", "pair"):
        body["stream"] = True
    elif mode == "false":
        body["stream"] = False
    return body, mode == "pair"


# -- the cases -------------------------------------------------------------------------------


def tool_cases() -> list[CoverageCase]:
    rows = all_pairs(
        {
            "tool_choice": ("absent", "none", "auto", "required", "named"),
            "parallel_tool_calls": ("absent", True, False),
            "tools": (1, 2, 3),
            "strict": (False, True),
            "stream": STREAM_MODES,
            "conversation": ("plain", "tool-result", "image", "audio-input"),
        }
    )
    cases = []
    for row in rows:
        offered = tools(row["tools"], row["strict"])
        body: dict[str, Any] = {
            "model": "gpt-4o",
            "messages": _conversation(row["conversation"], TOOL_PROMPT),
            "tools": offered,
        }
        if row["tool_choice"] == "named":
            body["tool_choice"] = {"type": "function", "function": {"name": offered[-1]["function"]["name"]}}
        elif row["tool_choice"] != "absent":
            body["tool_choice"] = row["tool_choice"]
        if row["parallel_tool_calls"] != "absent":
            body["parallel_tool_calls"] = row["parallel_tool_calls"]
        body, pair = _with_stream(body, row["stream"])
        cases.append(CoverageCase(body, row, pair))
    return cases


def response_format_cases() -> list[CoverageCase]:
    rows = all_pairs({"schema": tuple(RESPONSE_SCHEMAS), "strict": (False, True), "stream": STREAM_MODES})
    cases = []
    for row in rows:
        schema = RESPONSE_SCHEMAS[row["schema"]]
        json_schema: dict[str, Any] = {"name": row["schema"].replace("-", "_"), "schema": schema}
        if row["strict"]:
            json_schema.update(strict=True, schema=strict_schema(schema))
        body: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "messages": _conversation("plain", JSON_PROMPT),
            "response_format": {"type": "json_schema", "json_schema": json_schema},
        }
        body, pair = _with_stream(body, row["stream"])
        cases.append(CoverageCase(body, row, pair))
    return cases


def modality_cases() -> list[CoverageCase]:
    rows = all_pairs(
        {
            "modalities": ("text", "text+audio"),
            "voice": ("absent", "alloy", "ash", "coral", "verse"),
            "stream": STREAM_MODES,
        }
    )
    cases = []
    for row in rows:
        body: dict[str, Any] = {
            "model": "gpt-4o-audio-preview",
            "messages": _conversation("plain", AUDIO_PROMPT),
            "modalities": ["text", "audio"] if row["modalities"] == "text+audio" else ["text"],
        }
        if row["voice"] != "absent":
            body["audio"] = {"voice": row["voice"], "format": "wav"}
        body, pair = _with_stream(body, row["stream"])
        cases.append(CoverageCase(body, row, pair))
    return cases


def plain_cases() -> list[CoverageCase]:
    """Requests with none of the features: the plain replies every server must get right."""
    cases = []
    for prompt, mode in zip(PLAIN_PROMPTS * 2, STREAM_MODES):
        body, pair = _with_stream({"messages": [{"role": "user", "content": prompt}]}, mode)
        cases.append(CoverageCase(body, {"stream": mode}, pair))
    return cases


def coverage_cases() -> list[CoverageCase]:
    """Every case of the phase, in a fixed order."""
    return [*tool_cases(), *response_format_cases(), *modality_cases(), *plain_cases()]
