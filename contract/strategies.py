"""Hypothesis strategies for request bodies: schema-driven and realistic.

Three kinds, because each finds different bugs. Schema-driven data (through
hypothesis-jsonschema) works for any OpenAPI document and finds crashes on odd
but valid input. Realistic conversations for the chat-completion API find
semantic bugs that random data almost never reaches (a tool call answered by the
matching tool message, a ``json_schema`` worth obeying). Negative data breaks
exactly one rule of the schema, so a server that accepts it is caught on that
rule alone; it is built from the other two, in :mod:`contract.negative`.

Everything is built by composing strategies, so Hypothesis can shrink a failing
request to a minimal one; nothing here draws from the ``random`` module.
"""

from __future__ import annotations

import base64
import io
import json
import math
import threading
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from .compat.hypothesis_jsonschema import SchemaBuilder, alphabet_key, schema_builder, set_schema_builder
from .core.spec import MediaSchema, Operation, Spec, SpecError
from .core.validate import ContractValidator, media_type_of, pick_media

JSON_MEDIA = "application/json"

# -- schema-driven ------------------------------------------------------------------


def request_media(operation: Operation) -> MediaSchema:
    """The JSON media type of an operation's request body (``application/json`` first)."""
    media = pick_media(operation.request_body, JSON_MEDIA)
    if media is not None:
        return media
    for name, media in operation.request_body.items():
        if media_type_of(name).endswith("+json"):
            return media
    raise SpecError(f"{operation.method.upper()} {operation.path} documents no JSON request body")


def bounded_schema(schema: Any, max_items: int = 3, max_properties: int = 3) -> Any:
    """A copy of ``schema`` whose arrays and free-form objects have an upper size.

    hypothesis-jsonschema generates, then filters, on ``oneOf``; a conversation of
    forty messages each tried against four branches is what makes it slow. Bounds
    written into the schema are honoured while generating, so nothing is wasted.
    """
    if isinstance(schema, list):
        return [bounded_schema(item, max_items, max_properties) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: bounded_schema(value, max_items, max_properties) if isinstance(value, (dict, list)) else value
        for key, value in schema.items()
    }
    for key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
        if isinstance(schema.get(key), dict):
            out[key] = {name: bounded_schema(sub, max_items, max_properties) for name, sub in schema[key].items()}
    kinds = declared_types(schema)
    if "array" in kinds:
        floor = int(schema.get("minItems", 0))
        out["maxItems"] = max(floor, min(int(schema.get("maxItems", max_items)), max_items))
    if "object" in kinds and not schema.get("properties") and not schema.get("patternProperties"):
        floor = max(int(schema.get("minProperties", 0)), len(schema.get("required", [])))
        out["maxProperties"] = max(floor, min(int(schema.get("maxProperties", max_properties)), max_properties))
    return out


def declared_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema names in ``type`` (none when it names none)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def schema_requests(
    spec: Spec, operation: Operation, max_items: int = 3, max_properties: int = 3
) -> st.SearchStrategy[Any]:
    """Bodies valid against the operation's request schema, from the schema alone (any document)."""
    media = request_media(operation)
    schema = bounded_schema(spec.inline(media.schema), max_items, max_properties)
    return schema_strategy(schema)


# -- one strategy per schema ----------------------------------------------------------------
# hypothesis-jsonschema builds the strategy of an object's property values while drawing, so every
# draw canonicalised the request schema's sub-schemas again: nine tenths of a run's time. Within
# :func:`reused_schema_strategies` each (sub-)schema is built once and the strategy is reused by every
# later draw, pass, phase and run of the process. A strategy depends only on its schema, so the same
# seed draws the same values either way.

_MAX_CACHED_STRATEGIES = 4096
_scope_lock = threading.Lock()
_scope_depth = 0
_library_builder: SchemaBuilder | None = None


class _BuiltStrategies:
    """Strategies by schema content; the schema objects seen are remembered too, so asking again
    with the same object (each draw does) costs a dictionary look-up, not a walk of the schema."""

    def __init__(self, limit: int = _MAX_CACHED_STRATEGIES) -> None:
        self.limit = limit
        self.by_content: dict[tuple[str, bool, str | None], st.SearchStrategy[Any]] = {}
        # id -> (the schema object, kept alive so the id stays its own; the content key)
        self.by_object: dict[tuple[int, bool, str | None], tuple[Any, tuple[str, bool, str | None]]] = {}
        self.lock = threading.Lock()

    def get(
        self, schema: Any, alphabet: tuple[bool, str | None], build: Callable[[], st.SearchStrategy[Any]]
    ) -> st.SearchStrategy[Any]:
        seen = self.by_object.get((id(schema), *alphabet))
        if seen is not None and seen[0] is schema and seen[1] in self.by_content:
            return self.by_content[seen[1]]
        key = (_content_key(schema), *alphabet)
        strategy = self.by_content.get(key)
        if strategy is None:
            strategy = build()
        with self.lock:
            if len(self.by_content) >= self.limit or len(self.by_object) >= self.limit:
                self.by_content.clear()
                self.by_object.clear()
            self.by_content[key] = strategy
            self.by_object[(id(schema), *alphabet)] = (schema, key)
        return strategy


_built = _BuiltStrategies()


def schema_strategy(schema: Any) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (hypothesis-jsonschema), built once per distinct schema."""
    with reused_schema_strategies():
        return from_schema(schema)


@contextmanager
def reused_schema_strategies() -> Iterator[None]:
    """Build each schema's strategy once while the block runs (re-entrant, thread-safe).

    The library's builder is wrapped only inside the block, so a user's own hypothesis-jsonschema
    tests in the same process see the library as it ships.
    """
    global _scope_depth, _library_builder
    with _scope_lock:
        if _scope_depth == 0:
            _library_builder = schema_builder()
            set_schema_builder(_memoised(_library_builder))
        _scope_depth += 1
    try:
        yield
    finally:
        with _scope_lock:
            _scope_depth -= 1
            if _scope_depth == 0 and _library_builder is not None:
                set_schema_builder(_library_builder)


def _memoised(build: SchemaBuilder) -> SchemaBuilder:
    def build_once(schema: Any, *, alphabet: Any, custom_formats: Any) -> st.SearchStrategy[Any]:
        key = alphabet_key(alphabet)
        # Custom formats are the caller's strategies, not comparable by value: never shared.
        if custom_formats is not None or key is None:
            return build(schema, alphabet=alphabet, custom_formats=custom_formats)
        return _built.get(schema, key, lambda: build(schema, alphabet=alphabet, custom_formats=custom_formats))

    return build_once


def _content_key(schema: Any) -> str:
    """Equal for equal schemas written in the same order (``repr`` keeps 1, 1.0 and True apart)."""
    return repr(schema)


# -- realistic conversations ------------------------------------------------------------

PHRASES = (
    "What is the weather in Paris?",
    "Summarise this paragraph in one sentence.",
    "Translate 'good morning' into Japanese.",
    "Écris un haïku sur la pluie.",
    "How many days are there between 3 March and 17 April?",
    "List three prime numbers above 100.",
    "Explain recursion to a ten-year-old.",
    "Was ist die Hauptstadt von Australien?",
    "Give me a JSON object describing a cat.",
    "🙂 Can you read emoji too?",
)
SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You answer in one short sentence.",
    "You are a weather assistant. Use the tools when you need live data.",
    "Reply in the language of the question.",
)
ASSISTANT_REPLIES = (
    "Sure, here it is.",
    "It is 18 °C and sunny in Paris.",
    "The answer is 45 days.",
    "Let me check that for you.",
)
MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4o-audio-preview", "gpt-4.1", "o3-mini")
VOICES = ("alloy", "ash", "coral", "verse")
IMAGE_URLS = tuple(f"https://example.com/images/{name}" for name in ("cat.png", "chart.jpg", "receipt.webp"))

_FUNCTION_NAMES = ("get_weather", "search_docs", "convert_currency", "create_event", "lookup_order", "send_email")
_PROPERTY_NAMES = ("city", "query", "amount", "currency", "date", "limit", "units", "tags", "urgent", "order_id")
_ENUM_VALUES = (("celsius", "fahrenheit"), ("low", "normal", "high"), ("EUR", "USD", "JPY"))


def wav_bytes(duration_ms: int = 20, rate: int = 8000, frequency: float = 440.0) -> bytes:
    """A tiny mono 16-bit PCM WAV (a sine tone): real audio for ``input_audio`` parts."""
    frames = int(rate * duration_ms / 1000)
    samples = b"".join(
        int(8000 * math.sin(2 * math.pi * frequency * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


_WAV_B64 = tuple(base64.b64encode(wav_bytes(ms)).decode("ascii") for ms in (10, 20, 40))

short_texts = st.one_of(st.sampled_from(PHRASES), st.text(min_size=1, max_size=24))


def _text_part() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda text: {"type": "text", "text": text}, short_texts)


def _image_part() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda url: {"type": "image_url", "image_url": url}, st.sampled_from(IMAGE_URLS))


def _audio_part() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda data: {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}, st.sampled_from(_WAV_B64)
    )


user_messages = st.builds(
    lambda content: {"role": "user", "content": content},
    st.one_of(short_texts, st.lists(st.one_of(_text_part(), _image_part(), _audio_part()), min_size=1, max_size=3)),
)
system_messages = st.builds(lambda text: {"role": "system", "content": text}, st.sampled_from(SYSTEM_PROMPTS))


@st.composite
def json_schemas(draw: st.DrawFn, max_properties: int = 3) -> dict[str, Any]:
    """A small object schema with typed properties, every property required, no extras.

    Used both for tool parameters and for ``response_format``: the shape strict
    structured output demands (``required`` complete, ``additionalProperties`` false).
    """
    names = draw(st.lists(st.sampled_from(_PROPERTY_NAMES), min_size=1, max_size=max_properties, unique=True))
    properties: dict[str, Any] = {}
    for name in names:
        properties[name] = draw(
            st.one_of(
                st.just({"type": "string"}),
                st.just({"type": "integer", "minimum": 0}),
                st.just({"type": "number"}),
                st.just({"type": "boolean"}),
                st.sampled_from(_ENUM_VALUES).map(lambda values: {"type": "string", "enum": list(values)}),
                st.just({"type": "array", "items": {"type": "string"}}),
            )
        )
    return {"type": "object", "properties": properties, "required": list(names), "additionalProperties": False}


def instances_of(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for the small schemas that :func:`json_schemas` makes (fast; no filtering)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return st.fixed_dictionaries({name: instances_of(sub) for name, sub in schema.get("properties", {}).items()})
    if kind == "array":
        return st.lists(instances_of(schema.get("items", {"type": "string"})), max_size=2)
    if kind == "integer":
        return st.integers(min_value=int(schema.get("minimum", -1000)), max_value=1000)
    if kind == "number":
        return st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    return st.sampled_from(("Paris", "order-1234", "2025-04-17", "blue")) | st.text(max_size=12)


@st.composite
def tool_definitions(draw: st.DrawFn, max_tools: int = 3) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(_FUNCTION_NAMES), min_size=1, max_size=max_tools, unique=True))
    tools = []
    for name in names:
        function: dict[str, Any] = {
            "name": name,
            "description": f"{name.replace('_', ' ').capitalize()}.",
            "parameters": draw(json_schemas()),
        }
        strict = draw(st.sampled_from((None, True, False)))
        if strict is not None:
            function["strict"] = strict
        tools.append({"type": "function", "function": function})
    return tools


@st.composite
def _tool_round(draw: st.DrawFn, tools: list[dict[str, Any]], first_id: int) -> list[dict[str, Any]]:
    """An assistant turn that calls tools, then one tool message per call, ids matching."""
    chosen = draw(st.lists(st.sampled_from(tools), min_size=1, max_size=2))
    calls = []
    for offset, tool in enumerate(chosen):
        function = tool["function"]
        arguments = draw(instances_of(function["parameters"]))
        calls.append(
            {
                "id": f"call_{first_id + offset}",
                "type": "function",
                "function": {"name": function["name"], "arguments": json.dumps(arguments)},
            }
        )
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": calls}]
    for call in calls:
        result = draw(st.sampled_from(('{"ok": true}', '{"temp_c": 18}', '"done"', '{"results": []}')))
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return messages


@st.composite
def conversations(
    draw: st.DrawFn, tools: list[dict[str, Any]] | None = None, max_rounds: int = 2
) -> list[dict[str, Any]]:
    """A conversation that ends where the server must answer (after a user or tool message)."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append(draw(system_messages))
    messages.append(draw(user_messages))
    for round_number in range(draw(st.integers(min_value=0, max_value=max_rounds))):
        if tools and draw(st.booleans()):
            messages.extend(draw(_tool_round(tools, first_id=10 * round_number + 1)))
            if draw(st.booleans()):
                continue  # the server answers the tool results
        messages.append({"role": "assistant", "content": draw(st.sampled_from(ASSISTANT_REPLIES))})
        messages.append(draw(user_messages))
    return messages


def _tool_choices(tools: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    named = st.sampled_from([t["function"]["name"] for t in tools]).map(
        lambda name: {"type": "function", "function": {"name": name}}
    )
    return st.one_of(st.sampled_from(("auto", "none", "required")), named)


_ABSENT = object()


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Either the value or "leave the field out", shrinking towards leaving it out."""
    return st.one_of(st.just(_ABSENT), strategy)


@st.composite
def conversation_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed chat-completion request, as client code would send it."""
    tools = draw(st.one_of(st.none(), tool_definitions()))
    request: dict[str, Any] = {"model": draw(_optional(st.sampled_from(MODELS)))}
    request["messages"] = draw(conversations(tools))
    if tools:
        request["tools"] = tools
        request["tool_choice"] = draw(_optional(_tool_choices(tools)))
        request["parallel_tool_calls"] = draw(_optional(st.booleans()))
    output = draw(st.sampled_from(("text", "json_schema", "audio")))
    if output == "json_schema":
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": draw(st.sampled_from(("answer", "cat", "event"))), "schema": draw(json_schemas())},
        }
    elif output == "audio":
        request["modalities"] = ["text", "audio"]
        request["audio"] = {"voice": draw(st.sampled_from(VOICES))}
    else:
        request["modalities"] = draw(_optional(st.just(["text"])))
    request["stream"] = draw(_optional(st.booleans()))
    request["ssml_enabled"] = draw(_optional(st.booleans()))
    request["context"] = draw(_optional(st.sampled_from(({"locale": "fr-FR"}, {"user_id": "u-42"}))))
    return {key: value for key, value in request.items() if value is not _ABSENT}


def realistic_requests(spec: Spec, operation: Operation | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Realistic conversations that ``spec`` accepts.

    On the project's contract every conversation is valid, so the filter keeps
    them all; on a stricter or defective document (the seed rejects every system
    message) it leaves out what the document forbids, so a run never blames a
    server for refusing what the document itself rejects.
    """
    operation = operation or spec.operation()
    pointer = request_media(operation).pointer
    validator = ContractValidator(spec)
    return conversation_requests().filter(lambda body: validator.is_valid_at(pointer, body))


def realistic_applies(spec: Spec, operation: Operation | None = None) -> bool:
    """Whether the document describes a chat-completion request at all (so realistic data fits)."""
    try:
        operation = operation or spec.operation()
        pointer = request_media(operation).pointer
    except SpecError:
        return False
    return ContractValidator(spec).is_valid_at(
        pointer, {"model": MODELS[0], "messages": [{"role": "user", "content": PHRASES[0]}]}
    )
