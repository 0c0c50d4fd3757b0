"""The ``openai`` profile accepts every chat-completion request that the official SDK's own types allow.

Requests are drawn from ``CompletionCreateParamsNonStreaming`` and ``CompletionCreateParamsStreaming`` by
walking their TypedDict hints (``Literal``, ``Union``/``Optional``, ``Iterable``/``Sequence``/``List`` as
lists, ``Dict[str, X]``, ``Required``/``NotRequired`` keys, nested TypedDicts), so the drawn shapes follow
the installed SDK: a literal value or a nested field it gains is drawn at once. The walker is ours rather than
``st.from_type``, which draws iterables that are not JSON arrays, unbounded text, lists and numbers, and
knows nothing of the API's documented ranges of one parameter or another.

Values are judged against the schema, not a server: a ``tool_choice`` naming a function that is not offered
is drawn as the types allow it. Numbers are drawn within the range the API documents (the SDK gives ranges
only in its docstrings), because the profile bounds them the same way.

The seed profile is also shown to refuse what only the openai dialect speaks (``developer``, ``json_object``).
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin

import pytest
import typing_extensions
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openai.types.chat import (
    ChatCompletionAllowedToolChoiceParam,
    ChatCompletionAssistantMessageParam,
    ChatCompletionCustomToolParam,
    ChatCompletionFunctionMessageParam,
    ChatCompletionMessageCustomToolCallParam,
    ChatCompletionNamedToolChoiceCustomParam,
)
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

from contract.core.spec import load_spec
from contract.core.validate import ContractValidator

# The request parameters the openai profile is meant to cover. Left out of the draws:
# - `functions` and `function_call`: deprecated by the SDK in favour of `tools` and `tool_choice`;
# - `web_search_options`, `moderation`, `prompt_cache_retention` and `prompt_cache_options`: features of
#   OpenAI's own service (search, moderation, prompt caching) that an OpenAI-compatible server need not know.
PARAMETERS = frozenset(
    {
        "messages",
        "model",
        "stream",
        "stream_options",
        "n",
        "logprobs",
        "top_logprobs",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "user",
        "metadata",
        "store",
        "reasoning_effort",
        "prediction",
        "service_tier",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "modalities",
        "audio",
        "verbosity",
        "safety_identifier",
        "prompt_cache_key",
    }
)

# Union members left out, for the same reason: the profile covers the five roles and function tools only.
# The `function` role is deprecated; custom (free-form) tools, their calls, and `allowed_tools` choices are
# a later feature of OpenAI's own service.
LEFT_OUT_TYPES: frozenset[Any] = frozenset(
    {
        ChatCompletionFunctionMessageParam,
        ChatCompletionCustomToolParam,
        ChatCompletionMessageCustomToolCallParam,
        ChatCompletionAllowedToolChoiceParam,
        ChatCompletionNamedToolChoiceCustomParam,
    }
)
# Keys of nested TypedDicts left out: the assistant's deprecated `function_call`, and the prompt-caching hint
# on content parts (prompt caching is left out at the top level too).
LEFT_OUT_KEYS = frozenset({"function_call", "prompt_cache_breakpoint"})

# Rules the SDK's types cannot express and give only in a docstring; a draw breaking one is not a request
# the SDK documents. ChatCompletionAssistantMessageParam.content: "Required unless `tool_calls` or
# `function_call` is specified."
DOCUMENTED_RULES: dict[Any, Callable[[Mapping[str, Any]], bool]] = {
    ChatCompletionAssistantMessageParam: lambda message: "content" in message or "tool_calls" in message,
}

MAX_ITEMS = 3  # lists and maps: at most three messages, parts, tools, tool calls...
MAX_TEXT = 8
INT_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Bound:
    """A documented range of one top-level parameter: its numbers, and the size of its list or map."""

    low: float | None = None
    high: float | None = None
    max_size: int = MAX_ITEMS


# The ranges the API documents; the SDK states them only in docstrings, the profile as minimum/maximum.
API_RANGES = {
    "temperature": Bound(0, 2),  # "between 0 and 2"
    "top_p": Bound(0, 1),  # a probability mass
    "n": Bound(1, 128),  # the API's own limits on choices
    "top_logprobs": Bound(0, 20),  # "An integer between 0 and 20"
    "frequency_penalty": Bound(-2, 2),  # "Number between -2.0 and 2.0"
    "presence_penalty": Bound(-2, 2),
    "logit_bias": Bound(-100, 100),  # "a bias value from -100 to 100"
    "max_tokens": Bound(1, None),  # a number of tokens to generate
    "max_completion_tokens": Bound(1, None),
    "stop": Bound(max_size=4),  # "Up to 4 sequences"
    "metadata": Bound(max_size=16),  # "Set of 16 key-value pairs"
}

TEXT = st.text(max_size=MAX_TEXT)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=MAX_ITEMS) | st.dictionaries(TEXT, inner, max_size=MAX_ITEMS),
    max_leaves=6,
)
WRAPPERS = (Required, NotRequired, Annotated)
LISTS = (list, Iterable, Sequence)


def strategy_for(hint: Any, bound: Bound = Bound()) -> st.SearchStrategy[Any]:
    """Every JSON value the type ``hint`` allows, small; TypeError for a type the walker does not know."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in WRAPPERS:
        return strategy_for(args[0], bound)
    if hint is None or hint is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (Union, types.UnionType):
        return st.one_of([strategy_for(member, bound) for member in args if member not in LEFT_OUT_TYPES])
    if typing_extensions.is_typeddict(hint):
        return typed_dict(hint)
    if origin in LISTS:
        return st.lists(strategy_for(args[0]), max_size=bound.max_size)
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1], bound), max_size=bound.max_size)
    if hint is str:
        return TEXT
    if hint is bool:
        return st.booleans()
    if hint is int:
        low = INT_RANGE[0] if bound.low is None else int(bound.low)
        high = INT_RANGE[1] if bound.high is None else int(bound.high)
        return st.integers(low, high)
    if hint is float:  # an int is a float to the type checker, and a number to JSON Schema
        floats = st.floats(bound.low, bound.high, allow_nan=False, allow_infinity=False)
        low = INT_RANGE[0] if bound.low is None else math.ceil(bound.low)
        high = INT_RANGE[1] if bound.high is None else math.floor(bound.high)
        return floats | st.integers(low, high)
    if hint is object:
        return JSON_VALUES
    raise TypeError(f"no strategy for the SDK type {hint!r}")


def is_required(td: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    return origin is Required or (td.__total__ and origin is not NotRequired)


def hints_of(td: Any) -> dict[str, Any]:
    return typing_extensions.get_type_hints(td, include_extras=True)


@cache
def typed_dict(td: Any) -> st.SearchStrategy[dict[str, Any]]:
    """One dictionary of the TypedDict ``td``: its required keys, and any of its optional ones."""
    fields = {key: hint for key, hint in hints_of(td).items() if key not in LEFT_OUT_KEYS}
    drawn = st.fixed_dictionaries(
        {key: strategy_for(hint) for key, hint in fields.items() if is_required(td, hint)},
        optional={key: strategy_for(hint) for key, hint in fields.items() if not is_required(td, hint)},
    )
    rule = DOCUMENTED_RULES.get(td)
    return drawn.filter(rule) if rule else drawn


def request(td: Any) -> st.SearchStrategy[dict[str, Any]]:
    """One request body of the SDK's params TypedDict ``td``, restricted to PARAMETERS and their API ranges."""
    fields = {key: hint for key, hint in hints_of(td).items() if key in PARAMETERS}
    missing = PARAMETERS - set(fields)
    assert not missing, f"the SDK's {td.__name__} no longer has {sorted(missing)}"

    def field(key: str) -> st.SearchStrategy[Any]:
        return strategy_for(fields[key], API_RANGES.get(key, Bound()))

    return st.fixed_dictionaries(
        {key: field(key) for key, hint in fields.items() if is_required(td, hint)},
        optional={key: field(key) for key, hint in fields.items() if not is_required(td, hint)},
    )


def literal_values(hint: Any) -> list[Any]:
    """The literal values a (possibly Optional, Required-wrapped) hint names."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return list(args)
    return [value for arg in args for value in literal_values(arg)]


def typed_dicts_in(hint: Any) -> list[Any]:
    """The TypedDicts a hint names through its unions and lists (not inside them), less the left-out ones."""
    if typing_extensions.is_typeddict(hint):
        return [] if hint in LEFT_OUT_TYPES else [hint]
    return [td for arg in get_args(hint) for td in typed_dicts_in(arg)]


def message_kinds() -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """Every message type of the SDK, and every message type with each of its content parts and tool calls."""
    kinds: dict[str, st.SearchStrategy[dict[str, Any]]] = {}
    for message in typed_dicts_in(SDK_HINTS["messages"]):
        kinds[message.__name__] = typed_dict(message)
        for key in ("content", "tool_calls"):
            for part in typed_dicts_in(hints_of(message).get(key)):
                kinds[f"{message.__name__}.{key}:{part.__name__}"] = st.builds(
                    lambda drawn, parts, key=key: {**drawn, key: parts},
                    typed_dict(message),
                    st.lists(typed_dict(part), min_size=1, max_size=MAX_ITEMS),
                )
    return kinds


SDK_HINTS = hints_of(CompletionCreateParamsNonStreaming)
MESSAGE_KINDS = message_kinds()


def first_error(validator: ContractValidator, body: dict[str, Any]) -> str | None:
    errors = validator.validate_request(body)
    return str(errors[0]) if errors else None


@pytest.fixture(scope="module")
def openai_validator() -> ContractValidator:
    return ContractValidator(load_spec(profile="openai"))


@pytest.fixture(scope="module")
def seed_validator() -> ContractValidator:
    return ContractValidator(load_spec())


# No shrinking: the message names the refused request and its first error line, and shrinking a request of
# some thirty optional keys takes minutes yet leaves most of them in.
PROPERTY_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(body=st.one_of(request(CompletionCreateParamsNonStreaming), request(CompletionCreateParamsStreaming)))
def test_openai_profile_accepts_every_request_of_the_sdk_types(
    openai_validator: ContractValidator, body: dict[str, Any]
) -> None:
    error = first_error(openai_validator, body)
    assert error is None, f"the openai profile refused {json.dumps(body, ensure_ascii=False)}\n{error}"


# Each message type, content part and tool call of the SDK in a request of its own (only `model` and
# `messages`, so a refusal here is about the messages): the test above draws them all, but 150 draws of
# whole requests need not reach every one of them.
@settings(PROPERTY_SETTINGS, max_examples=10)
@pytest.mark.parametrize("kind", list(MESSAGE_KINDS))
@given(data=st.data())
def test_openai_profile_accepts_every_message_kind_of_the_sdk_types(
    openai_validator: ContractValidator, kind: str, data: st.DataObject
) -> None:
    messages = data.draw(strategy_for(SDK_HINTS["messages"]), label="messages")
    body = {
        "model": data.draw(strategy_for(SDK_HINTS["model"]), label="model"),
        "messages": [*messages, data.draw(MESSAGE_KINDS[kind], label=kind)],
    }
    error = first_error(openai_validator, body)
    assert error is None, f"the openai profile refused {json.dumps(body, ensure_ascii=False)}\n{error}"


# Every value of the SDK's enum-like parameters, one request each: a value the profile lacks fails by name,
# however rarely the property test above would draw it.
ENUM_PARAMETERS = ("reasoning_effort", "service_tier", "modalities")
ENUM_CASES = [(key, value) for key in ENUM_PARAMETERS for value in literal_values(SDK_HINTS[key])]


@pytest.mark.parametrize(("key", "value"), ENUM_CASES, ids=[f"{key}={value}" for key, value in ENUM_CASES])
def test_openai_profile_takes_every_value_of_the_sdk_enums(
    openai_validator: ContractValidator, key: str, value: str
) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        key: [value] if key == "modalities" else value,
    }
    error = first_error(openai_validator, body)
    assert error is None, f"the openai profile refused {json.dumps(body)}\n{error}"


DIALECT_ONLY = {
    "developer message": {"model": "m", "messages": [{"role": "developer", "content": "Answer in French."}]},
    "json_object": {
        "model": "m",
        "messages": [{"role": "user", "content": "Hello"}],
        "response_format": {"type": "json_object"},
    },
}


@pytest.mark.parametrize("body", list(DIALECT_ONLY.values()), ids=list(DIALECT_ONLY))
def test_only_the_openai_profile_takes_its_dialect(
    seed_validator: ContractValidator, openai_validator: ContractValidator, body: dict[str, Any]
) -> None:
    assert first_error(seed_validator, body) is not None, f"the seed profile accepted {json.dumps(body)}"
    error = first_error(openai_validator, body)
    assert error is None, f"the openai profile refused {json.dumps(body)}\n{error}"
