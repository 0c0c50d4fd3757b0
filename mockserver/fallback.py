"""The reply to a request that no fixture matches, when serving the bundled fixtures.

A new user points a client at the server before writing any fixture; they
should see a real, plausible stream at once, and one that obeys their request
the way a real model would: a tool call when ``tool_choice`` asks for one,
JSON that fits a requested ``json_schema``, audio when ``modalities`` asks for
it, and the same 400 a real server sends when the request cannot be served.
Everything is drawn from a seeded RNG keyed by the request, so the same
request and seed always get the same reply.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from random import Random
from typing import Any

from contract.core.schema_instances import Hints, SchemaProblem, SchemaTooLarge, build_instance, words_of_name
from contract.core.semantics import asks_for_json_object, asks_for_json_schema, requested_json_schema

from .request_rules import Refusal, request_problem
from .turns import AssistantTurn

__all__ = ["fallback_turn"]

SOURCE = "fallback"
_MAX_PARALLEL_CALLS = 2


def fallback_turn(body: dict[str, Any], seed: int) -> AssistantTurn | Refusal:
    """A made-up reply that honours ``body`` (already valid against the request schema), or the refusal.

    Deterministic: the same ``(body, seed)`` always gives the same turn. Audio for ``modalities`` is
    added afterwards by :func:`mockserver.request_rules.shape_for_modalities`, as for fixture replies.
    """
    rng = Random(f"fallback:{seed}:{_digest(body)}")
    refusal = request_problem(body)
    if refusal is not None:
        return refusal
    tools = _callable_tools(body)
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    hints = _hints(_last_user_text(messages))
    try:
        called = _tools_to_call(body, tools, messages, hints, rng)
        if called:
            return AssistantTurn(tool_calls=tuple(_tool_call(tool, hints, rng) for tool in called), source=SOURCE)
        text = _text(body, messages, hints, rng)
    except _Refused as refused:
        return refused.refusal
    return AssistantTurn(content=text, source=SOURCE)


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class _Tool:
    index: int  # position in the request's ``tools``, for error parameters
    name: str
    parameters: Any  # the JSON Schema, or ``None`` when the tool takes no arguments


def _digest(body: dict[str, Any]) -> str:
    """A stable key of the request (``hash()`` of a str changes between processes).

    ``stream`` is left out: the same request streamed or not gets the same reply, as from a real model.
    """
    canonical = json.dumps(
        {k: v for k, v in body.items() if k != "stream"}, sort_keys=True, ensure_ascii=True, default=repr
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


# ---------------------------------------------------------------------------
# What a real server refuses before any reply


def _callable_tools(body: dict[str, Any]) -> list[_Tool]:
    """Offered functions with a name; a tool without one can never be called, so it is left out."""
    tools = []
    for index, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str) and function["name"]:
            tools.append(_Tool(index, function["name"], function.get("parameters")))
    return tools


# ---------------------------------------------------------------------------
# Tool calls


_GENERIC_NAME_WORDS = {
    "get",
    "set",
    "fetch",
    "list",
    "find",
    "make",
    "do",
    "run",
    "call",
    "use",
    "the",
    "a",
    "an",
    "to",
    "of",
    "by",
    "for",
    "and",
    "or",
    "info",
    "data",
    "tool",
    "function",
    "api",
    "current",
    "new",
    "all",
    "my",
    "v1",
    "v2",
}


def _tools_to_call(
    body: dict[str, Any], tools: list[_Tool], messages: list[dict[str, Any]], hints: Hints, rng: Random
) -> list[_Tool]:
    choice = body.get("tool_choice", "auto")
    parallel = body.get("parallel_tool_calls", True) is not False
    if isinstance(choice, dict):
        name = choice["function"]["name"]  # offered: checked by request_problem
        named = [t for t in tools if t.name == name]
        if not named:  # offered only by a tool with an empty name, which no call can carry
            raise _Refused(
                Refusal(
                    f"tool_choice names the function {name!r}, but no offered tool has that name to call",
                    "invalid_tool_choice",
                    "tool_choice",
                )
            )
        return named[:1]
    if choice == "required":
        if not tools:  # tools are offered (request_problem checked), but none with a name to call
            raise _Refused(
                Refusal(
                    "tool_choice is 'required' but no offered tool has a function name to call",
                    "invalid_tool_choice",
                    "tool_choice",
                )
            )
        unique = list({t.name: t for t in reversed(tools)}.values())[::-1]  # first tool of each name
        count = rng.randint(1, min(_MAX_PARALLEL_CALLS, len(unique))) if parallel else 1
        return rng.sample(unique, count)
    if choice == "auto" and tools and messages and messages[-1].get("role") == "user":
        wanted = {_stem(w) for w in hints.words}
        scored: list[tuple[int, Any]] = []
        for tool in tools:
            name_words = {_stem(w) for w in words_of_name(tool.name)} - _GENERIC_NAME_WORDS
            overlap = len(name_words & wanted)
            if overlap and tool.name not in {t.name for _, t in scored}:
                scored.append((overlap, tool))
        scored.sort(key=lambda pair: -pair[0])
        return [tool for _, tool in scored[: _MAX_PARALLEL_CALLS if parallel else 1]]
    return []


def _tool_call(tool: _Tool, hints: Hints, rng: Random) -> dict[str, Any]:
    call_id = "call_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
    arguments: Any = {}
    if tool.parameters is not None:
        try:
            arguments = build_instance(tool.parameters, rng.getrandbits(32), hints, want_object=True)
        except SchemaProblem as exc:
            why = (
                "tool parameters ask for a value larger than the mock builds"
                if isinstance(exc, SchemaTooLarge)
                else "Invalid schema"
            )
            raise _Refused(
                Refusal(
                    f"{why} for function {tool.name!r}: {exc}",
                    code="invalid_function_parameters",
                    param=f"tools[{tool.index}].function.parameters",
                )
            ) from None
    return {"id": call_id, "type": "function", "function": {"name": tool.name, "arguments": _compact_json(arguments)}}


def _compact_json(value: Any) -> str:
    """JSON the way current models write arguments and structured content: no spaces, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------
# Text


def _text(body: dict[str, Any], messages: list[dict[str, Any]], hints: Hints, rng: Random) -> str:
    schema = requested_json_schema(body)
    if (schema is None and asks_for_json_schema(body)) or asks_for_json_object(body):  # any object will do
        return _compact_json({"answer": _answer(messages, hints, rng)})
    if schema is not None:
        try:
            return _compact_json(build_instance(schema, rng.getrandbits(32), hints))
        except SchemaProblem as exc:
            raise _Refused(
                Refusal(
                    f"response_format.json_schema.schema cannot be honoured: {exc}",
                    code="invalid_json_schema",
                    param="response_format.json_schema.schema",
                )
            ) from None
    if messages and messages[-1].get("role") == "tool":
        return _answer_from_tool_results(messages, rng)
    return _answer(messages, hints, rng)


_STOPWORDS = set(
    """
a about above after again all also am an and any are as at be because been before being below between both but by
can could did do does doing down during each few for from further had has have having he her here hers him his how i
if in into is it its itself just let me more most my no nor not now of off on once only or other our out over own
please same she should so some such tell than that the their them then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your yours hi hello hey
thanks thank give show need want know like get make could can't don't i'm it's what's there's is there anything
say said good best better great nice way ways write explain describe help think use find see look work new old bit lot
something thing things really much many one two today tomorrow quick quickly simple simply briefly short long sure
summarise summarize recommend suggest compare calculate translate
""".split()
)

_OPENERS = (
    "Here's a quick take on {a}.",
    "Good question about {a}.",
    "Sure, let's look at {a}.",
    "Happy to help with {a}.",
    "Short answer on {a}: it depends a little on the details.",
)
_MIDDLES = (
    "The main thing to know about {a} is that a little context goes a long way.",
    "When it comes to {a}, most people start with {b} and adjust from there.",
    "A practical first step is to look at {b} and see how it relates to {a}.",
    "In most cases {a} and {b} are closely linked, so it helps to consider them together.",
    "If you're weighing {b}, the usual trade-offs are time, cost and simplicity.",
    "One common approach to {a} is to break it into small, concrete steps.",
    "For {a}, a concrete example usually says more than a general rule.",
)
_CLOSERS = (
    "Let me know if you'd like more detail on {b}.",
    "Want me to go deeper on any part of that?",
    "I can expand on {b} if that helps.",
    "Hope that helps!",
)
_GREETINGS = (
    "Hello! How can I help you today?",
    "Hi there! What would you like to talk about?",
    "Hello! Ask me anything and I'll do my best to help.",
)


def _answer(messages: list[dict[str, Any]], hints: Hints, rng: Random) -> str:
    """Three or four sentences from the phrase bank, about words from the last user message."""
    topics = list(hints.words)
    parts = _non_text_parts(messages)
    if not topics and not parts:
        return rng.choice(_GREETINGS)
    topics = topics or parts
    # Longer words are more often the subject ("sourdough" over "home"); ties keep the user's order.
    first = rng.choice(sorted(topics, key=len, reverse=True)[:2])
    rest = [t for t in topics if t != first] or parts or ["the details"]
    second = rng.choice(rest[:4])
    middles = rng.sample(_MIDDLES, rng.randint(1, 2))
    sentences = [rng.choice(_OPENERS), *middles, rng.choice(_CLOSERS)]
    return " ".join(s.format(a=first, b=second) for s in sentences)


def _answer_from_tool_results(messages: list[dict[str, Any]], rng: Random) -> str:
    """A short answer built on the content of the trailing tool messages, as after a real tool call."""
    names = {
        call.get("id"): (call.get("function") or {}).get("name")
        for m in messages
        if m.get("role") == "assistant"
        for call in (m.get("tool_calls") or [])
        if isinstance(call, dict)
    }
    trailing = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing.append(message)
    facts = []
    for message in reversed(trailing):
        name = names.get(message.get("tool_call_id"))
        content = message.get("content")
        text = content if isinstance(content, str) else " ".join(c for c in content or [] if isinstance(c, str))
        facts.append((name if isinstance(name, str) and name else "the tool", _facts(text)))
    lead = rng.choice(
        (
            "Based on the result from {tool}, {facts}.",
            "According to {tool}, {facts}.",
            "The {tool} result shows that {facts}.",
        )
    )
    answer = " ".join(
        lead.format(tool=tool, facts=fact) if i == 0 else f"Also, {tool} reports that {fact}."
        for i, (tool, fact) in enumerate(facts)
    )
    return (
        answer
        + " "
        + rng.choice(
            ("Let me know if you need anything else.", "Anything else you'd like me to check?", "Hope that helps!")
        )
    )


def _facts(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict) and value:
        pairs = [f"{key} is {_short(v)}" for key, v in list(value.items())[:3]]
        return ", ".join(pairs[:-1]) + (" and " if len(pairs) > 1 else "") + pairs[-1]
    if isinstance(value, list) and value:
        return f"it returned {len(value)} item{'s' if len(value) != 1 else ''}, starting with {_short(value[0])}"
    if value in ("", {}, [], None):
        return "it returned nothing"
    return f"it returned {_short(value)}"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _non_text_parts(messages: list[dict[str, Any]]) -> list[str]:
    """How to refer to images and audio in the last user message."""
    user = _last_user(messages)
    content = user.get("content") if user else None
    kinds = [p.get("type") for p in content if isinstance(p, dict)] if isinstance(content, list) else []
    return [
        label
        for kind, label in (("image_url", "the image you shared"), ("input_audio", "your audio message"))
        if kind in kinds
    ]


# ---------------------------------------------------------------------------
# Reading the conversation


def _last_user(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((m for m in reversed(messages) if m.get("role") == "user"), None)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    user = _last_user(messages)
    content = user.get("content") if user else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "")
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            if isinstance(p, str)
            else ""
            for p in content
        )
    return ""


_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def _hints(text: str) -> Hints:
    """Content words of the user's message, in order, and the proper nouns among them."""
    words: list[str] = []
    proper: list[str] = []
    sentence_start = True
    for match in _WORD.finditer(text[:2000]):
        word = match.group().strip("'’-")
        before = text[: match.start()].rstrip()
        sentence_start = not before or before[-1] in ".!?"
        lowered = word.lower()
        if len(word) < 3 or lowered in _STOPWORDS:
            continue
        if word[0].isupper() and not sentence_start:
            proper.append(word)
        shown = word if word[0].isupper() and not sentence_start else lowered
        if shown not in words:
            words.append(shown)
    return Hints(words=tuple(words[:12]), proper_nouns=tuple(dict.fromkeys(proper)))


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word
