"""Make a reply obey the request, as a real model would, or say why it cannot.

A request may constrain its reply (``tool_choice``, ``parallel_tool_calls``,
``response_format``, ``modalities``). A real model obeys; a fixture that
breaks the constraint is the test author's mistake, so the server names the
fixture instead of sending a reply no real server would send.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import jsonschema

from contract.core.dialect import Dialect
from contract.core.schema_instances import schema_problem
from contract.core.semantics import JSON_OBJECT_SCHEMA, requested_json_schema

from .audio import AUDIO_FORMATS, synthesize_wav
from .tokenize import count_tokens
from .turns import AssistantTurn, AudioReply

_SECONDS_PER_TOKEN = 0.3  # speech at roughly 150 words a minute
MAX_TOOLS = 128  # as OpenAI-compatible servers take; each tool's schema is checked, so 10,000 took seconds
_MAX_AUDIO_S = 30.0


@dataclass(frozen=True)
class Refusal:
    """The request cannot be served as asked; becomes an Error body with ``status``."""

    message: str
    code: str
    param: str | None = None
    status: int = 400


def request_problem(body: dict[str, Any]) -> Refusal | None:
    """What a real server refuses whatever the reply: a tool choice that cannot be met, a schema that is not one.

    Fixture replies and fallback replies both pass through here, so a request is refused the same way
    whichever of them would have answered it. Each refusal is one the contract lists under its 400
    response's ``x-refusals``: the lint runs this function over schema-valid requests to keep it so.
    A missing ``audio.voice`` is not refused: the contract documents ``alloy`` as its default.
    """
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    if len(tools) > MAX_TOOLS:
        return Refusal(
            f"the request offers {len(tools)} tools; at most {MAX_TOOLS} are taken", "too_many_tools", "tools"
        )
    for index, tool in enumerate(tools):
        problem = _parameters_problem(tool.get("function"))
        if problem:
            name = (tool.get("function") or {}).get("name")
            return Refusal(
                f"Invalid schema for function {name!r}: {problem}",
                "invalid_function_parameters",
                f"tools[{index}].function.parameters",
            )
    offered = [tool.get("function", {}).get("name") for tool in tools]
    choice = body.get("tool_choice")
    if choice == "required" and not offered:
        return Refusal(
            "tool_choice is 'required' but the request offers no tools", "invalid_tool_choice", "tool_choice"
        )
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            return Refusal(
                'tool_choice names no function: expected {"type": "function", "function": {"name": ...}}',
                "invalid_tool_choice",
                "tool_choice.function.name",
            )
        if name not in offered:
            return Refusal(
                f"tool_choice names the function {name!r}, which is not among the offered tools "
                f"({', '.join(map(repr, offered)) or 'none'})",
                "invalid_tool_choice",
                "tool_choice",
            )
    audio_format = requested_audio_format(body)
    if wants_audio(body) and audio_format not in AUDIO_FORMATS:
        return Refusal(
            f"audio.format {audio_format!r} is not one the mock can produce; ask for "
            f"{' or '.join(map(repr, AUDIO_FORMATS))}",
            "unsupported_audio_format",
            "audio.format",
        )
    schema = requested_json_schema(body)
    problem = schema_problem(schema) if schema is not None else None
    if problem:
        return Refusal(
            f"response_format.json_schema.schema is not a usable JSON Schema: {problem}",
            "invalid_json_schema",
            "response_format.json_schema.schema",
        )
    return None


def dialect_problem(body: dict[str, Any], dialect: Dialect) -> Refusal | None:
    """What the profile's dialect lists as a refusal (``x-refusals``): ``logprobs``, which no reply holds."""
    if dialect.takes_logprobs and body.get("logprobs") is True:
        return Refusal(
            "logprobs is true, but the mock's replies carry no log probabilities; leave logprobs out or false",
            "unsupported_parameter",
            "logprobs",
        )
    return None


def requested_audio_format(body: dict[str, Any]) -> Any:
    """``audio.format`` as asked (``wav`` when absent)."""
    audio = body.get("audio")
    return audio.get("format", "wav") if isinstance(audio, dict) else "wav"


def _parameters_problem(function: Any) -> str | None:
    """Why a tool's ``parameters`` cannot describe a function's arguments, or ``None``."""
    parameters = function.get("parameters") if isinstance(function, dict) else None
    if parameters is None:
        return None
    problem = schema_problem(parameters)
    declared = parameters.get("type") if isinstance(parameters, dict) else None
    declared_types = {declared} if isinstance(declared, str) else set(declared) if isinstance(declared, list) else set()
    if problem is None and declared_types and "object" not in declared_types:
        problem = f"a function's parameters must describe an object, not {declared!r}"
    return problem


def turn_mismatch(turn: AssistantTurn, body: dict[str, Any]) -> str | None:
    """Why ``turn`` does not obey the request's constraints (a fixture error), or ``None``."""
    choice = body.get("tool_choice")
    names = [call.get("function", {}).get("name") for call in turn.tool_calls]
    if choice == "none" and turn.tool_calls:
        return "the request says tool_choice 'none' but the turn calls " + ", ".join(map(repr, names))
    if choice == "required" and not turn.tool_calls:
        return "the request says tool_choice 'required' but the turn calls no tool"
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        if names != [wanted]:
            calls = ", ".join(map(repr, names)) or "no tool"
            return f"the request's tool_choice names {wanted!r} but the turn calls {calls}"
    if body.get("parallel_tool_calls") is False and len(turn.tool_calls) > 1:
        return f"the request says parallel_tool_calls false but the turn makes {len(turn.tool_calls)} calls"
    schema = requested_json_schema(body)
    if schema is not None and not turn.tool_calls and turn.refusal is None:
        text = turn.content if turn.content is not None else (turn.audio.transcript if turn.audio else "")
        try:
            value = json.loads(text)
        except ValueError as exc:
            kind = body["response_format"].get("type")
            return f"the request asks for JSON (response_format {kind}) but the turn's content is not JSON: {exc}"
        error = jsonschema.validators.validator_for(schema)(schema).iter_errors(value)
        first = next(iter(sorted(error, key=lambda e: list(map(str, e.absolute_path)))), None)
        if first is not None:
            where = "/".join(map(str, first.absolute_path)) or "/"
            asked = "a JSON object (response_format json_object)" if schema is JSON_OBJECT_SCHEMA else "json_schema"
            return f"the turn's content breaks the requested {asked} at {where}: {first.message}"
    return None


def wants_audio(body: dict[str, Any]) -> bool:
    return "audio" in (body.get("modalities") or [])


def shape_for_modalities(turn: AssistantTurn, body: dict[str, Any], seed: int) -> AssistantTurn:
    """Audio when ``modalities`` asks for it (synthesised from the text if the turn has none); text otherwise.

    As with real servers, an audio reply carries its words as the transcript and ``content`` is null.
    """
    if wants_audio(body):
        audio_format = requested_audio_format(body)
        if turn.audio is not None:
            return dataclasses.replace(turn, content=None, audio=dataclasses.replace(turn.audio, format=audio_format))
        if turn.content is None:
            return turn
        duration = min(_MAX_AUDIO_S, max(0.5, count_tokens(turn.content) * _SECONDS_PER_TOKEN))
        audio = AudioReply(wav=synthesize_wav(duration, seed=seed), transcript=turn.content, format=audio_format)
        return dataclasses.replace(turn, content=None, audio=audio)
    if turn.audio is not None:
        return dataclasses.replace(
            turn, content=turn.content if turn.content is not None else turn.audio.transcript, audio=None
        )
    return turn
