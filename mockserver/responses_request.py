"""A Responses API request (``POST /v1/responses``) read as the chat-completions request it stands for.

The fixtures are conversations written as chat messages, and the matcher, the request rules and the
fallback all read chat bodies; so a Responses request is translated once, here, into that body, and
everything after the lookup works as it does for chat. What the Response object must repeat back
(its ``tools``, ``text``, ``tool_choice`` and the rest, in Responses form) is kept beside it, and
``previous_response_id`` is handed to the route, which holds the stored conversations.

Each malformed field is refused with a :class:`~mockserver.request_rules.Refusal` that names it in
Responses terms (``input[2].call_id``, ``text.format.schema``), worded as the real API words them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .request_rules import Refusal
from .responses_input import RefusedRequest, input_messages, refuse, required_string, wrong_type
from .turns import AssistantTurn

MIN_OUTPUT_TOKENS = 16  # the real API refuses a smaller max_output_tokens
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
TOOL_CHOICES = ("auto", "none", "required")
VERBOSITIES = ("low", "medium", "high")
TRUNCATIONS = ("auto", "disabled")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
REASONING_SUMMARIES = ("auto", "concise", "detailed")
# Accepted and echoed or ignored: they change nothing in a replayed reply.
_IGNORED = (
    "include",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "stream_options",
    "top_logprobs",
    "max_tool_calls",
)
_HANDLED = (
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "parallel_tool_calls",
    "metadata",
    "store",
    "previous_response_id",
    "truncation",
    "reasoning",
    "background",
)
_NOT_SERVED = {
    "conversation": "the mock keeps no conversations objects; chain responses with previous_response_id",
    "prompt": "the mock has no stored prompt templates; send the input itself",
}
# A chat request rule's param, in the Responses request's own terms.
_PARAM_NAMES = (
    (re.compile(r"^tools\[(\d+)\]\.function\."), r"tools[\1]."),
    (re.compile(r"^tool_choice\.function\.name$"), "tool_choice.name"),
    (re.compile(r"^response_format\.json_schema\."), "text.format."),
    (re.compile(r"^response_format"), "text.format"),
    (re.compile(r"^messages"), "input"),
)


@dataclass(frozen=True)
class ResponsesRequest:
    """One Responses request: the conversation it adds, the chat options it sets, what its reply repeats.

    ``instructions`` are kept apart from ``messages`` because they are not carried over: a response that
    continues another (``previous_response_id``) has its own instructions or none.
    """

    messages: tuple[dict[str, Any], ...]  # the input as chat messages
    instructions: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the chat body's other fields
    stream: bool = False  # the Responses API answers with one JSON body unless asked to stream
    previous_response_id: str | None = None
    echo: dict[str, Any] = field(default_factory=dict)  # the Response object's request fields, Responses form

    def chat_body(self, history: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The chat-completions body the matcher, the request rules and the fallback read.

        ``history`` is the stored conversation of ``previous_response_id`` (from :meth:`conversation` of
        that request plus its reply), placed after this request's instructions and before its input.
        """
        system = [{"role": "system", "content": self.instructions}] if self.instructions is not None else []
        return {**self.options, "messages": [*system, *history, *self.messages], "stream": self.stream}

    def conversation(self, history: Sequence[dict[str, Any]], turn: AssistantTurn) -> list[dict[str, Any]]:
        """What to store under the new response's id: the history, this input and the reply, without
        the instructions, so the next request's ``previous_response_id`` continues from it."""
        return [*history, *self.messages, assistant_message(turn)]


def assistant_message(turn: AssistantTurn) -> dict[str, Any]:
    """The reply as the chat assistant message the fixture conversation holds at that place.

    Its tool call ids are the ``call_id``\\ s the client answers with, so the next step's ``tool``
    messages match the fixture's.
    """
    content = turn.content if turn.content is not None else (turn.audio.transcript if turn.audio else None)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if turn.tool_calls:
        message["tool_calls"] = [dict(call) for call in turn.tool_calls]
    if turn.refusal is not None:
        message["refusal"] = turn.refusal
    return message


def read_responses_request(body: Any) -> ResponsesRequest | Refusal:
    """The request, or the Refusal (status 400) that names its first malformed field."""
    try:
        return _read(body)
    except RefusedRequest as refused:
        return refused.refusal


def unknown_previous_response(response_id: str) -> Refusal:
    """The refusal for a ``previous_response_id`` the server holds no conversation for, as the real API words it."""
    return Refusal(
        f"Previous response with id {response_id!r} not found.", "previous_response_not_found", "previous_response_id"
    )


def in_responses_terms(refusal: Refusal) -> Refusal:
    """A chat request rule's refusal (``request_problem`` on :meth:`ResponsesRequest.chat_body`) with its
    ``param`` named as the Responses request names it: ``tools[0].parameters``, ``text.format.schema``."""
    param = refusal.param
    if param is None:
        return refusal
    for pattern, replacement in _PARAM_NAMES:
        param = pattern.sub(replacement, param, count=1)
    message = refusal.message.replace("response_format.json_schema.schema", "text.format.schema")
    return dataclasses.replace(refusal, param=param, message=message)


def _read(body: Any) -> ResponsesRequest:
    if not isinstance(body, dict):
        wrong_type("(body)", "an object", body)
    for key in body:
        if key in _NOT_SERVED:
            refuse(f"'{key}' is not served: {_NOT_SERVED[key]}.", "unsupported_parameter", key)
        if key not in _HANDLED and key not in _IGNORED:
            refuse(f"Unknown parameter: '{key}'.", "unknown_parameter", key)
    previous = _optional(body, "previous_response_id", str, "a string")
    if body.get("input") is None and previous is None:
        refuse("Missing required parameter: 'input'.", "missing_required_parameter", "input")
    messages = input_messages(body["input"]) if body.get("input") is not None else []
    options: dict[str, Any] = {}
    echo: dict[str, Any] = {}
    model = _optional(body, "model", str, "a string")
    if model is not None:
        options["model"] = model
    instructions = _optional(body, "instructions", str, "a string")
    tools = _tools(body.get("tools"))
    if tools:
        options["tools"] = [_chat_tool(tool) for tool in tools]
    choice = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        options["tool_choice"] = choice if isinstance(choice, str) else {"type": "function", "function": choice}
    text = _text(body.get("text"))
    if text["format"]["type"] != "text":
        options["response_format"] = _response_format(text["format"])
    if "verbosity" in text:
        options["verbosity"] = text["verbosity"]
    max_tokens = _max_output_tokens(body.get("max_output_tokens"))
    if max_tokens is not None:
        options["max_completion_tokens"] = max_tokens
    for key, top in (("temperature", 2.0), ("top_p", 1.0)):
        value = _bounded(body, key, top)
        if value is not None:
            options[key] = value
    for key in ("parallel_tool_calls", "store"):
        flag = _optional(body, key, bool, "a boolean")
        if flag is not None:
            options[key] = flag
    metadata = _metadata(body.get("metadata"))
    if metadata is not None:
        options["metadata"] = metadata
    if _optional(body, "background", bool, "a boolean"):
        refuse(
            "background is true; the mock answers every request in the foreground.", "unsupported_value", "background"
        )
    echo.update(
        instructions=instructions,
        max_output_tokens=max_tokens,
        metadata=metadata or {},
        model=model,
        parallel_tool_calls=options.get("parallel_tool_calls", True),
        previous_response_id=previous,
        reasoning=_reasoning(body.get("reasoning")),
        store=options.get("store", True),
        temperature=options.get("temperature", 1.0),
        text={"format": text["format"], "verbosity": text.get("verbosity", "medium")},
        tool_choice=(choice if isinstance(choice, str) else {"type": "function", **choice}) if choice else "auto",
        tools=tools,
        top_p=options.get("top_p", 1.0),
        truncation=_choice(body, "truncation", TRUNCATIONS) or "disabled",
    )
    for key in ("user", "safety_identifier", "prompt_cache_key"):
        echo[key] = _optional(body, key, str, "a string")
    stream = _optional(body, "stream", bool, "a boolean") or False
    return ResponsesRequest(tuple(messages), instructions, options, stream, previous, echo)


def _optional(body: dict[str, Any], key: str, kind: type, words: str) -> Any:
    """``body[key]`` when it is of ``kind``, None when absent or null; refused otherwise."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        wrong_type(key, words, value)
    return value


def _choice(body: dict[str, Any], key: str, allowed: Sequence[str], where: str | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if value not in allowed:
        param = f"{where}.{key}" if where else key
        refuse(
            f"Invalid value for '{param}': {value!r}; supported values are {', '.join(map(repr, allowed))}.",
            "invalid_value",
            param,
        )
    return str(value)


def _bounded(body: dict[str, Any], key: str, top: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        wrong_type(key, "a number", value)
    if not 0 <= value <= top:
        refuse(f"Invalid '{key}': {value!r} is not between 0 and {top:g}.", "invalid_value", key)
    return float(value)


def _max_output_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        wrong_type("max_output_tokens", "an integer", value)
    if value < MIN_OUTPUT_TOKENS:
        refuse(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, "
            f"but got {value} instead.",
            "integer_below_min_value",
            "max_output_tokens",
        )
    return value


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        wrong_type("metadata", "an object of strings", value)
    if len(value) > MAX_METADATA_KEYS:
        refuse(
            f"Invalid 'metadata': {len(value)} keys; at most {MAX_METADATA_KEYS} are taken.",
            "invalid_value",
            "metadata",
        )
    for key, text in value.items():
        if len(key) > MAX_METADATA_KEY:
            refuse(
                f"Invalid 'metadata': the key {key[:20]!r}... is longer than {MAX_METADATA_KEY} characters.",
                "invalid_value",
                "metadata",
            )
        if not isinstance(text, str):
            wrong_type(f"metadata.{key}", "a string", text)
        if len(text) > MAX_METADATA_VALUE:
            refuse(
                f"Invalid 'metadata.{key}': longer than {MAX_METADATA_VALUE} characters.",
                "invalid_value",
                f"metadata.{key}",
            )
    return dict(value)


def _tools(value: Any) -> list[dict[str, Any]]:
    """The function tools in the Responses form the Response repeats (``strict`` defaults to true there)."""
    if value is None:
        return []
    if not isinstance(value, list):
        wrong_type("tools", "an array of tools", value)
    tools: list[dict[str, Any]] = []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            wrong_type(where, "an object", tool)
        kind = tool.get("type")
        if kind != "function":
            refuse(
                f"{where} is a {kind!r} tool; the mock plays fixture replies and runs no built-in tools, so it "
                "takes 'function' tools only.",
                "unsupported_value",
                f"{where}.type",
            )
        name = required_string(tool, "name", where)
        echoed: dict[str, Any] = {"type": "function", "name": name, "description": None, "parameters": None}
        if tool.get("description") is not None:
            echoed["description"] = required_string(tool, "description", where)
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            wrong_type(f"{where}.parameters", "an object (a JSON Schema)", parameters)
        echoed["parameters"] = parameters
        strict = tool.get("strict")
        if strict is not None and not isinstance(strict, bool):
            wrong_type(f"{where}.strict", "a boolean", strict)
        echoed["strict"] = True if strict is None else strict
        tools.append(echoed)
    return tools


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool["name"], "strict": tool["strict"]}
    if tool["description"] is not None:
        function["description"] = tool["description"]
    if tool["parameters"] is not None:
        function["parameters"] = tool["parameters"]
    return {"type": "function", "function": function}


def _tool_choice(value: Any) -> str | dict[str, Any] | None:
    """``auto`` / ``none`` / ``required``, or ``{"name": ...}`` for one function."""
    if value is None:
        return None
    if isinstance(value, str):
        return _choice({"tool_choice": value}, "tool_choice", TOOL_CHOICES)
    if not isinstance(value, dict):
        wrong_type("tool_choice", "a string or an object", value)
    if value.get("type") != "function":
        refuse(
            f"tool_choice of type {value.get('type')!r} is not served; the mock takes 'auto', 'none', 'required' "
            "or {'type': 'function', 'name': ...}.",
            "unsupported_value",
            "tool_choice.type",
        )
    return {"name": required_string(value, "name", "tool_choice")}


def _text(value: Any) -> dict[str, Any]:
    """The ``text`` configuration as the Response repeats it; ``format`` defaults to plain text."""
    if value is None:
        return {"format": {"type": "text"}}
    if not isinstance(value, dict):
        wrong_type("text", "an object", value)
    text: dict[str, Any] = {"format": _format(value.get("format"))}
    verbosity = _choice(value, "verbosity", VERBOSITIES, "text")
    if verbosity is not None:
        text["verbosity"] = verbosity
    return text


def _format(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "text"}
    if not isinstance(value, dict):
        wrong_type("text.format", "an object", value)
    kind = _choice(value, "type", ("text", "json_object", "json_schema"), "text.format")
    if kind is None:
        refuse("Missing required parameter: 'text.format.type'.", "missing_required_parameter", "text.format.type")
    if kind != "json_schema":
        return {"type": kind}
    name = required_string(value, "name", "text.format")
    if "schema" not in value:
        refuse("Missing required parameter: 'text.format.schema'.", "missing_required_parameter", "text.format.schema")
    if not isinstance(value["schema"], dict):
        wrong_type("text.format.schema", "an object (a JSON Schema)", value["schema"])
    schema_format: dict[str, Any] = {"type": "json_schema", "name": name, "schema": value["schema"]}
    if value.get("description") is not None:
        schema_format["description"] = required_string(value, "description", "text.format")
    strict = value.get("strict")
    if strict is not None and not isinstance(strict, bool):
        wrong_type("text.format.strict", "a boolean", strict)
    schema_format["strict"] = strict
    return schema_format


def _response_format(text_format: dict[str, Any]) -> dict[str, Any]:
    """Chat's ``response_format`` for a Responses ``text.format`` (json_object or json_schema)."""
    if text_format["type"] != "json_schema":
        return {"type": text_format["type"]}
    json_schema = {key: text_format[key] for key in ("name", "description", "schema", "strict") if key in text_format}
    return {"type": "json_schema", "json_schema": json_schema}


def _reasoning(value: Any) -> dict[str, Any]:
    """The ``reasoning`` configuration as the Response repeats it; the mock's replies hold no reasoning."""
    if value is None:
        return {"effort": None, "summary": None}
    if not isinstance(value, dict):
        wrong_type("reasoning", "an object", value)
    return {
        "effort": _choice(value, "effort", REASONING_EFFORTS, "reasoning"),
        "summary": _choice(value, "summary", REASONING_SUMMARIES, "reasoning"),
    }
