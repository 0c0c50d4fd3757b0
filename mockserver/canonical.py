"""Requests and fixture turns in canonical, hashable form, and the conditions a request must meet.

A message becomes a hashable value with whitespace collapsed, tool-call arguments as sorted JSON and
images and audio as a hash of their bytes, so the index finds a request with one dict lookup on its
whole message list; matchers (``contains``, ``regex``) and ``match`` conditions on the rest of the
request are checked here too, so the index and the near-miss wording judge a request the same way.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import urllib.parse
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from contract.core.validate import short_json

from .fixtures import Fixture

Canon = Hashable


# -- canonical forms ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def normalise_text(text: str) -> str:
    """Runs of whitespace become one space; leading and trailing whitespace goes.

    Cached: ranking near misses compares one request's messages with many fixtures, and a message of
    a megabyte was split again for each of them (0.4 s on the event loop, now 10 ms).
    """
    return " ".join(text.split())


def canonical_message(message: Any) -> Canon:
    """A hashable form of one message; two messages match exactly when their forms are equal."""
    if not isinstance(message, dict):
        return ("raw", dumped(message))
    role = message.get("role")
    if role == "assistant":
        return (
            "assistant",
            scalar_key(message.get("name")),
            assistant_content_key(message.get("content")),
            tool_calls_key(message.get("tool_calls")),
        )
    if role == "tool":
        return ("tool", scalar_key(message.get("tool_call_id")), _content(message.get("content"), json_aware=True))
    return ("message", scalar_key(role_of(message)), scalar_key(message.get("name")), _content(message.get("content")))


def message_text(message: Any) -> str:
    """The text a matcher sees: the content, or its text parts joined by a space, normalised."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return normalise_text(content)
    if isinstance(content, list):
        texts = [
            p if isinstance(p, str) else p.get("text")
            for p in content
            if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")
        ]
        return normalise_text(" ".join(t for t in texts if isinstance(t, str)))
    return ""


def dumped(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def scalar_key(value: Any) -> Hashable:
    return value if value is None or isinstance(value, (str, int, float, bool)) else dumped(value)


def _text(value: Any, json_aware: bool = False) -> tuple[str, str]:
    if not isinstance(value, str):
        return ("value", dumped(value))
    if json_aware and value.lstrip()[:1] in ("{", "["):
        try:
            return ("json", dumped(json.loads(value)))
        except ValueError:
            pass
    return ("text", normalise_text(value))


def _content(content: Any, json_aware: bool = False) -> Canon:
    if content is None:
        return None
    if isinstance(content, str):
        return (_text(content, json_aware),)
    if isinstance(content, list):
        return tuple(part_key(part, json_aware) for part in content)
    return ("value", dumped(content))


def assistant_content_key(content: Any) -> Canon:
    if content is None or (isinstance(content, str) and not content.strip()):
        return None  # ``content: null``, "" and an absent content are the same thing
    return _content(content)


def part_key(part: Any, json_aware: bool) -> tuple[Hashable, ...]:
    if isinstance(part, str):
        return _text(part, json_aware)
    if not isinstance(part, dict):
        return ("part", dumped(part))
    kind = part.get("type")
    if kind == "text":
        return _text(part.get("text"), json_aware)
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return ("image", _url_key(url))
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            audio = {}
        return ("audio", scalar_key(audio.get("format")), _data_key(audio.get("data")))
    return ("part", dumped(part))


def _url_key(url: Any) -> str:
    """An http(s) URL as written; a ``data:`` URL by the SHA-256 of the bytes it carries."""
    if not isinstance(url, str):
        return dumped(url)
    url = url.strip()
    if not url.startswith("data:"):
        return url
    header, _, payload = url.partition(",")
    if header.endswith(";base64"):
        return _data_key(payload)
    return "sha256:" + hashlib.sha256(urllib.parse.unquote_to_bytes(payload)).hexdigest()


def _data_key(data: Any) -> str:
    if not isinstance(data, str):
        return dumped(data)
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = data.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def tool_calls_key(calls: Any) -> tuple[Hashable, ...]:
    if not calls:
        return ()
    if not isinstance(calls, list):
        return ("value", dumped(calls))
    out: list[tuple[Hashable, ...]] = []
    for call in calls:
        if not isinstance(call, dict):
            out.append(("value", dumped(call)))
            continue
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        out.append(
            (scalar_key(call.get("id")), scalar_key(function.get("name")), _arguments(function.get("arguments")))
        )
    return tuple(out)


def _arguments(arguments: Any) -> Hashable:
    if isinstance(arguments, str):
        try:
            return "json:" + dumped(json.loads(arguments))
        except ValueError:
            return "text:" + normalise_text(arguments)
    if arguments is None:
        return None
    return "json:" + dumped(arguments)


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matcher_holds(matcher: dict[str, str], text: str) -> bool:
    """Whether a message whose normalised text is ``text`` passes the matcher (no wording: lookups only)."""
    needle = matcher.get("contains")
    if needle is not None and normalise_needle(needle) not in text:
        return False
    pattern = matcher.get("regex")
    return pattern is None or _compiled(pattern).search(text) is not None


@functools.lru_cache(maxsize=16_384)
def normalise_needle(needle: str) -> str:
    """A ``contains`` needle normalised as message texts are; remembered, since lookups ask for each again."""
    return " ".join(needle.split())


def matcher_failure(matcher: dict[str, str], message: Any) -> str | None:
    """Why a request message fails a ``{contains: ...}`` / ``{regex: ...}`` matcher, or None."""
    text = message_text(message)
    needle = matcher.get("contains")
    if needle is not None and normalise_text(needle) not in text:
        return f"{short_json(text)} does not contain {short_json(normalise_text(needle))}"
    pattern = matcher.get("regex")
    if pattern is not None and not _compiled(pattern).search(text):
        return f"{short_json(text)} does not match regex {short_json(pattern)}"
    return None


# -- match conditions on the rest of the request ---------------------------------------------------


def condition_failure(match: dict[str, Any], body: dict[str, Any]) -> str | None:
    """The first ``match`` condition the request breaks, as one line, or None."""
    if "model" in match and body.get("model") != match["model"]:
        return f"model: expected {match['model']}, got {body.get('model') or 'none'}"
    if "ssml_enabled" in match:
        got = body.get("ssml_enabled", False)
        if got is not match["ssml_enabled"]:
            return f"ssml_enabled: expected {_json_word(match['ssml_enabled'])}, got {_json_word(got)}"
    if "context" in match:
        problem = _subset_failure(match["context"], body.get("context"), "context")
        if problem:
            return problem
    if "tools" in match:
        offered = {
            tool.get("function", {}).get("name")
            for tool in body.get("tools") or []
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
        }
        for name in match["tools"]:
            if name not in offered:
                listed = ", ".join(sorted(str(n) for n in offered)) or "none"
                return f"tools: the request does not offer {name} (offered: {listed})"
    if "modalities" in match:
        got = body.get("modalities") or ["text"]
        if not isinstance(got, list) or set(map(str, got)) != set(match["modalities"]):
            return f"modalities: expected [{', '.join(match['modalities'])}], got {_list_word(got)}"
    if "response_format" in match:
        response_format = body.get("response_format")
        got = response_format.get("type") if isinstance(response_format, dict) else None
        if (got or "text") != match["response_format"]:
            return f"response_format: expected {match['response_format']}, got {got or 'none'}"
    return None


def _subset_failure(expected: Any, got: Any, where: str) -> str | None:
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            seen = short_json(got) if got is not None else "nothing"
            return f"{where}: expected a mapping with {short_json(expected)}, got {seen}"
        for key, value in expected.items():
            if key not in got:
                return f"{where}.{key}: expected {short_json(value)}, got nothing"
            problem = _subset_failure(value, got[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if expected != got or (type(expected) is not type(got) and not _both_numbers(expected, got)):
        return f"{where}: expected {short_json(expected)}, got {short_json(got)}"
    return None


def _both_numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))


def _json_word(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, type(None))) else short_json(value)


def _list_word(value: Any) -> str:
    return f"[{', '.join(map(str, value))}]" if isinstance(value, list) else short_json(value)


# -- fixture turns in canonical form ---------------------------------------------------------------


@dataclass(frozen=True)
class IndexedTurn:
    """One assistant turn of one fixture, with its message prefix in canonical form."""

    order: int
    fixture: Fixture
    turn_index: int
    prefix: tuple[Canon | None, ...]  # None where the fixture has a matcher
    matchers: tuple[tuple[int, dict[str, str]], ...]
    roles: tuple[str, ...]

    @property
    def priority(self) -> tuple[int, int]:
        """Higher first: more ``match`` conditions, then added later."""
        return (len(self.fixture.match), self.order)


def prefix_chain(keys: Sequence[Canon]) -> list[int]:
    """Hashes of every leading run of messages: ``out[k]`` stands for the first k + 1 messages."""
    out, running = [], 0
    for key in keys:
        running = hash((running, key))
        out.append(running)
    return out


# Roles that are one role to a fixture: ``developer`` is what OpenAI's newer models call the system
# message, and clients send it in its place (LangChain and the AI SDK for reasoning models).
SAME_ROLE = {"developer": "system"}


def role_of(message: Any) -> str:
    role = message.get("role") if isinstance(message, dict) else None
    return SAME_ROLE.get(role, role) if isinstance(role, str) else dumped(role)
