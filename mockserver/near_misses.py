"""Why no fixture answered: the closest fixture turns, each with where the request first differs from it.

Asked only on a miss, for at most ``NEAR_MISS_CANDIDATES`` turns the index picked as likely, so the
wording may take its time: it quotes the differing text around the first difference, counts messages,
and ranks turns that differ at the same place by how similar the message is.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from contract.core.validate import short_json

from .canonical import (
    Canon,
    IndexedTurn,
    assistant_content_key,
    condition_failure,
    dumped,
    matcher_failure,
    message_text,
    normalise_text,
    part_key,
    role_of,
    scalar_key,
    tool_calls_key,
)
from .fixtures import Fixture


@dataclass(frozen=True)
class NearMiss:
    """A fixture turn that almost answers a request, and where the request first differs from it."""

    fixture: Fixture
    turn_index: int
    message_index: int | None  # 0-based index in the request's messages; the reason counts from 1
    reason: str

    def __str__(self) -> str:
        return f"{self.fixture.name} ({self.fixture.where(self.turn_index)}): {self.reason}"


# -- explaining a near miss -------------------------------------------------------------------------


def explain(
    entry: IndexedTurn, body: dict[str, Any], messages: list[Any], canon: tuple[Canon, ...]
) -> tuple[tuple[float, ...], IndexedTurn, NearMiss]:
    fixture = entry.fixture
    needed = entry.turn_index
    matchers = dict(entry.matchers)
    shared = 0
    for i in range(min(len(messages), needed)):
        expected = fixture.conversation[i]
        got = messages[i]
        if i not in matchers:
            problem = None if canon[i] == entry.prefix[i] else _message_difference(i, expected, got)
        elif (
            not isinstance(got, dict)
            or role_of(got) != role_of(expected)
            or scalar_key(got.get("name")) != scalar_key(expected.get("name"))
        ):
            problem = _message_difference(i, expected, got)
        else:
            failure = matcher_failure(matchers[i], got)
            problem = f"message {i + 1} ({role_of(expected)}): {failure}" if failure else None
        if problem:
            similarity = _similarity(expected, got, matchers.get(i))
            score = (float(shared), 0.0, -abs(len(messages) - needed), similarity)
            return score, entry, NearMiss(fixture, entry.turn_index, i, problem)
        shared += 1
    if len(messages) != needed:
        reason = f"request has {_count(len(messages))}, the turn needs {needed}"
        score = (float(shared), 0.0, -abs(len(messages) - needed), 0.0)
        return score, entry, NearMiss(fixture, entry.turn_index, None, reason)
    reason = condition_failure(fixture.match, body) or "matches, but another fixture answered first"
    return (float(shared), 1.0, 0.0, 1.0), entry, NearMiss(fixture, entry.turn_index, None, reason)


def _similarity(expected: dict[str, Any], got: Any, matcher: dict[str, str] | None) -> float:
    """How close a differing message is, from 0 to 1, to rank near misses that differ at the same place."""
    got_text = message_text(got)[:400]
    if matcher is not None:
        needle = matcher.get("contains") or matcher.get("regex") or ""
        if not needle or not got_text:
            return 0.0
        finder = difflib.SequenceMatcher(None, needle.lower(), got_text.lower(), autojunk=False)
        return finder.find_longest_match(0, len(needle), 0, len(got_text)).size / len(needle)
    expected_text = message_text(expected)[:400]
    if not expected_text and not got_text:
        expected_text, got_text = dumped(expected)[:400], dumped(got)[:400]
    return difflib.SequenceMatcher(None, expected_text, got_text, autojunk=False).ratio()


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _count(n: int) -> str:
    return _plural(n, "message")


def _message_difference(i: int, expected: dict[str, Any], got: Any) -> str:
    where = f"message {i + 1}"
    expected_role, got_role = role_of(expected), role_of(got)
    if not isinstance(got, dict):
        return f"{where}: expected a {expected_role} message, got {short_json(got)}"
    if expected_role != got_role:
        return f"{where}: expected a {expected_role} message, got {got_role}"
    where = f"{where} ({expected_role})"
    if scalar_key(expected.get("name")) != scalar_key(got.get("name")):
        return f"{where}: expected name {_word(expected.get('name'))}, got {_word(got.get('name'))}"
    if expected_role == "assistant":
        if assistant_content_key(expected.get("content")) != assistant_content_key(got.get("content")):
            return f"{where}: {_texts(_display(expected.get('content')), _display(got.get('content')))}"
        return f"{where}: {_tool_call_difference(expected.get('tool_calls') or [], got.get('tool_calls') or [])}"
    if expected_role == "tool" and scalar_key(expected.get("tool_call_id")) != scalar_key(got.get("tool_call_id")):
        return (
            f"{where}: expected tool_call_id {_word(expected.get('tool_call_id'))}, "
            f"got {_word(got.get('tool_call_id'))}"
        )
    return f"{where}: {_content_difference(expected.get('content'), got.get('content'), expected_role == 'tool')}"


def _content_difference(expected: Any, got: Any, json_aware: bool) -> str:
    expected_parts = _parts_of(expected)
    got_parts = _parts_of(got)
    if expected_parts is None or got_parts is None:
        return _texts(_display(expected), _display(got))
    if len(expected_parts) == 1 and len(got_parts) == 1:
        return _part_difference(expected_parts[0], got_parts[0], json_aware)
    if len(expected_parts) != len(got_parts):
        return f"expected {_plural(len(expected_parts), 'content part')}, got {len(got_parts)}"
    for n, (a, b) in enumerate(zip(expected_parts, got_parts)):
        if part_key(a, json_aware) != part_key(b, json_aware):
            return f"part {n + 1}: {_part_difference(a, b, json_aware)}"
    return _texts(_display(expected), _display(got))


def _parts_of(content: Any) -> list[Any] | None:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return content
    return None


def _part_difference(expected: Any, got: Any, json_aware: bool) -> str:
    a, b = part_key(expected, json_aware), part_key(got, json_aware)
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a != kind_b:
        return f"expected {kind_a}, got {kind_b}"
    if kind_a == "text":
        return _texts(_display(expected), _display(got))
    if kind_a == "image":
        return f"expected image {_shorten(str(a[1]))}, got image {_shorten(str(b[1]))}"
    if kind_a == "audio":
        if a[1] != b[1]:
            return f"expected audio format {_word(a[1])}, got {_word(b[1])}"
        return f"audio data differs (expected {str(a[2])[:19]}…, got {str(b[2])[:19]}…)"
    return f"expected {short_json(expected)}, got {short_json(got)}"


def _kind(canon: Any) -> str:
    tag = canon[0] if isinstance(canon, tuple) and canon else "value"
    return {"text": "text", "json": "text", "image": "image", "audio": "audio"}.get(str(tag), "another part")


def _display(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return normalise_text(content)
    if isinstance(content, dict) and content.get("type") == "text":
        return normalise_text(str(content.get("text")))
    if isinstance(content, list) and all(
        isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text") for p in content
    ):
        return message_text({"content": content})
    return dumped(content)


def _texts(expected: str | None, got: str | None) -> str:
    """``expected "...", got "..."``; long texts are cut around the first difference."""
    if expected is None or got is None:
        return f"expected {_quote(expected)}, got {_quote(got)}"
    start = len(_common_prefix(expected, got))
    return f"expected {_quote(_window(expected, start))}, got {_quote(_window(got, start))}"


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


def _window(text: str, differs_at: int, width: int = 60) -> str:
    if len(text) <= width:
        return text
    start = max(0, min(differs_at - 20, len(text) - width))
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def _quote(text: str | None) -> str:
    return "no content" if text is None else json.dumps(text, ensure_ascii=False)


def _word(value: Any) -> str:
    return "none" if value is None else str(value)


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _tool_call_difference(expected: list[Any], got: list[Any]) -> str:
    if not isinstance(got, list):
        return f"expected {_plural(len(expected), 'tool call')}, got {short_json(got)}"
    if len(expected) != len(got):
        return f"expected {_plural(len(expected), 'tool call')}, got {len(got)}"
    for n, (a, b) in enumerate(zip(expected, got)):
        mine, theirs = tool_calls_key([a])[0], tool_calls_key([b])[0]
        if mine == theirs:
            continue
        if isinstance(mine, tuple) and isinstance(theirs, tuple) and len(theirs) == 3 and mine[0] != theirs[0]:
            return f"tool call {n + 1}: expected id {_word(mine[0])}, got {_word(theirs[0])}"
        return f"tool call {n + 1}: expected {_call_text(a)}, got {_call_text(b)}"
    return "the tool calls differ"


def _call_text(call: Any) -> str:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return short_json(call)
    function = call["function"]
    return f"{function.get('name')}({_shorten(str(function.get('arguments')))})"
