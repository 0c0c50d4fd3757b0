"""Find the fixture turn that answers a request, fast, and explain the closest ones when none does.

Every message is reduced to a canonical, hashable form (whitespace collapsed,
tool-call arguments as sorted JSON, images and audio by a hash of their bytes),
so a request is found with one dict lookup on its whole message list however
many fixtures are loaded. Turns whose prefix holds a matcher cannot be hashed
that way; they live in small buckets keyed by everything else about them.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import difflib
import functools
import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contract.core.validate import short_json

from .fixtures import Fixture, matcher_of
from .turns import AssistantTurn

NEAR_MISS_LIMIT = 3
NEAR_MISS_CANDIDATES = 256  # at most this many fixture turns are compared on a miss

Canon = Hashable


@dataclass(frozen=True)
class Match:
    fixture: Fixture
    turn_index: int
    turn: AssistantTurn


@dataclass(frozen=True)
class NearMiss:
    """A fixture turn that almost answers a request, and where the request first differs from it."""

    fixture: Fixture
    turn_index: int
    message_index: int | None  # 0-based index in the request's messages; the reason counts from 1
    reason: str

    def __str__(self) -> str:
        return f"{self.fixture.name} ({self.fixture.where(self.turn_index)}): {self.reason}"


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
        return ("raw", _dump(message))
    role = message.get("role")
    if role == "assistant":
        return (
            "assistant",
            _scalar(message.get("name")),
            _assistant_content(message.get("content")),
            _tool_calls(message.get("tool_calls")),
        )
    if role == "tool":
        return ("tool", _scalar(message.get("tool_call_id")), _content(message.get("content"), json_aware=True))
    return ("message", _scalar(_role(message)), _scalar(message.get("name")), _content(message.get("content")))


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


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def _scalar(value: Any) -> Hashable:
    return value if value is None or isinstance(value, (str, int, float, bool)) else _dump(value)


def _text(value: Any, json_aware: bool = False) -> tuple[str, str]:
    if not isinstance(value, str):
        return ("value", _dump(value))
    if json_aware and value.lstrip()[:1] in ("{", "["):
        try:
            return ("json", _dump(json.loads(value)))
        except ValueError:
            pass
    return ("text", normalise_text(value))


def _content(content: Any, json_aware: bool = False) -> Canon:
    if content is None:
        return None
    if isinstance(content, str):
        return (_text(content, json_aware),)
    if isinstance(content, list):
        return tuple(_part(part, json_aware) for part in content)
    return ("value", _dump(content))


def _assistant_content(content: Any) -> Canon:
    if content is None or (isinstance(content, str) and not content.strip()):
        return None  # ``content: null``, "" and an absent content are the same thing
    return _content(content)


def _part(part: Any, json_aware: bool) -> tuple[Hashable, ...]:
    if isinstance(part, str):
        return _text(part, json_aware)
    if not isinstance(part, dict):
        return ("part", _dump(part))
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
        return ("audio", _scalar(audio.get("format")), _data_key(audio.get("data")))
    return ("part", _dump(part))


def _url_key(url: Any) -> str:
    """An http(s) URL as written; a ``data:`` URL by the SHA-256 of the bytes it carries."""
    if not isinstance(url, str):
        return _dump(url)
    url = url.strip()
    if not url.startswith("data:"):
        return url
    header, _, payload = url.partition(",")
    if header.endswith(";base64"):
        return _data_key(payload)
    return "sha256:" + hashlib.sha256(urllib.parse.unquote_to_bytes(payload)).hexdigest()


def _data_key(data: Any) -> str:
    if not isinstance(data, str):
        return _dump(data)
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = data.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _tool_calls(calls: Any) -> tuple[Hashable, ...]:
    if not calls:
        return ()
    if not isinstance(calls, list):
        return ("value", _dump(calls))
    out: list[tuple[Hashable, ...]] = []
    for call in calls:
        if not isinstance(call, dict):
            out.append(("value", _dump(call)))
            continue
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        out.append((_scalar(call.get("id")), _scalar(function.get("name")), _arguments(function.get("arguments"))))
    return tuple(out)


def _arguments(arguments: Any) -> Hashable:
    if isinstance(arguments, str):
        try:
            return "json:" + _dump(json.loads(arguments))
        except ValueError:
            return "text:" + normalise_text(arguments)
    if arguments is None:
        return None
    return "json:" + _dump(arguments)


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


# -- the index ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
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


def _chain(keys: Sequence[Canon]) -> list[int]:
    """Hashes of every leading run of messages: ``out[k]`` stands for the first k + 1 messages."""
    out, running = [], 0
    for key in keys:
        running = hash((running, key))
        out.append(running)
    return out


# Roles that are one role to a fixture: ``developer`` is what OpenAI's newer models call the system
# message, and clients send it in its place (LangChain and the AI SDK for reasoning models).
_SAME_ROLE = {"developer": "system"}


def _role(message: Any) -> str:
    role = message.get("role") if isinstance(message, dict) else None
    return _SAME_ROLE.get(role, role) if isinstance(role, str) else _dump(role)


class FixtureIndex:
    """All loaded fixture turns, indexed by their message prefix.

    Lookup is one dict probe for turns whose prefix is all literal, plus one probe per
    distinct matcher layout among turns with the request's message count and roles.
    """

    def __init__(self, fixtures: Iterable[Fixture] = ()) -> None:
        self._lock = threading.Lock()
        self._order = 0
        self._exact: dict[tuple[Canon, ...], list[_Entry]] = {}
        # (message count, roles) -> matcher positions -> prefix with None at those positions -> entries
        self._patterns: dict[
            tuple[int, tuple[str, ...]], dict[frozenset[int], dict[tuple[Any, ...], list[_Entry]]]
        ] = {}
        self._needle_indexes: dict[Any, tuple[list[_Entry], _NeedleIndex]] = {}  # bucket's place -> (it, its index)
        self._by_prefix: dict[int, list[_Entry]] = {}  # near misses: chain hash of a leading run -> turns
        self._by_length: dict[int, list[_Entry]] = {}
        self._all: list[_Entry] = []
        self._fixtures: list[Fixture] = []
        for fixture in fixtures:
            self.add(fixture)

    def __len__(self) -> int:
        return len(self._fixtures)

    def add(self, fixture: Fixture) -> None:
        """Index every assistant turn of ``fixture``; on a tie it wins over those added before."""
        with self._lock:
            self._fixtures.append(fixture)
            canon = [None if matcher_of(m) is not None else canonical_message(m) for m in fixture.conversation]
            roles = tuple(_role(m) for m in fixture.conversation)
            literal_run = next((i for i, c in enumerate(canon) if c is None), len(canon))
            chain = _chain(canon[:literal_run])
            previous = 0
            for turn_index in sorted(fixture.turns):
                self._order += 1
                prefix = tuple(canon[:turn_index])
                matchers = tuple(
                    (i, matcher_of(fixture.conversation[i]) or {}) for i in range(turn_index) if canon[i] is None
                )
                entry = _Entry(self._order, fixture, turn_index, prefix, matchers, roles[:turn_index])
                if not matchers:
                    _insert(self._exact, prefix, entry)
                else:
                    layouts = self._patterns.setdefault((turn_index, entry.roles), {})
                    buckets = layouts.setdefault(frozenset(i for i, _ in matchers), {})
                    _insert(buckets, prefix, entry)
                for k in range(previous, min(turn_index, literal_run)):
                    self._by_prefix.setdefault(chain[k], []).append(entry)
                previous = max(previous, turn_index)
                self._by_length.setdefault(turn_index, []).append(entry)
                self._all.append(entry)

    def lookup(self, body: dict[str, Any]) -> Match | list[NearMiss]:
        """The turn that answers ``body``, or the closest turns (at most 3) with what differs."""
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            messages = []
        canon = tuple(canonical_message(m) for m in messages)
        for entry in self._exact.get(canon, ()):
            if condition_failure(entry.fixture.match, body) is None:
                return Match(entry.fixture, entry.turn_index, entry.fixture.turns[entry.turn_index])
        best: _Entry | None = None
        for place, bucket in self._matcher_buckets(messages, canon):
            for entry in self._needles(place, bucket).candidates(messages):  # best first: the first that matches
                if best is not None and entry.priority <= best.priority:
                    break
                if (
                    all(matcher_holds(m, message_text(messages[i])) for i, m in entry.matchers)
                    and condition_failure(entry.fixture.match, body) is None
                ):
                    best = entry
                    break
        if best is not None:
            return Match(best.fixture, best.turn_index, best.fixture.turns[best.turn_index])
        return self._near_misses(body, messages, canon)

    # -- internals -------------------------------------------------------------------------------
    def _matcher_candidates(self, messages: list[Any], canon: tuple[Canon, ...]) -> Iterable[_Entry]:
        for _, bucket in self._matcher_buckets(messages, canon):
            yield from bucket

    def _matcher_buckets(self, messages: list[Any], canon: tuple[Canon, ...]) -> Iterable[tuple[Any, list[_Entry]]]:
        """Where each bucket is, and its turns: those that match the request but for their matchers."""
        shape = (len(messages), tuple(_role(m) for m in messages))
        layouts = self._patterns.get(shape)
        if not layouts:
            return
        for positions, buckets in list(layouts.items()):
            key = tuple(None if i in positions else c for i, c in enumerate(canon))
            bucket = buckets.get(key)
            if bucket:
                yield (shape, positions, key), bucket

    def _needles(self, place: Any, bucket: list[_Entry]) -> _NeedleIndex:
        """The bucket's needle index, built on the first lookup after the bucket changed (it is then a new list)."""
        built = self._needle_indexes.get(place)
        if built is None or built[0] is not bucket:
            built = (bucket, _NeedleIndex(bucket))
            self._needle_indexes[place] = built
        return built[1]

    def _near_misses(self, body: dict[str, Any], messages: list[Any], canon: tuple[Canon, ...]) -> list[NearMiss]:
        """Compare a bounded set of likely candidates; see docs/fixtures.md, "Near misses", for which."""
        chosen: dict[int, _Entry] = {}

        def take(entries: Iterable[_Entry]) -> None:
            for entry in entries:
                if len(chosen) >= NEAR_MISS_CANDIDATES:
                    return
                chosen.setdefault(entry.order, entry)

        take(self._exact.get(canon, ()))
        take(self._matcher_candidates(messages, canon))
        chain = _chain(canon)
        for k in range(len(chain) - 1, -1, -1):
            take(self._by_prefix.get(chain[k], ()))
        take(self._by_length.get(len(messages), ()))
        if len(chosen) < NEAR_MISS_LIMIT:
            take(self._all)
        scored = [_explain(entry, body, messages, canon) for entry in chosen.values()]
        scored.sort(key=lambda item: (item[0], item[1].order), reverse=True)
        misses: list[NearMiss] = []
        named: set[int] = set()
        for _, entry, miss in scored:
            if id(entry.fixture) in named:
                continue
            named.add(id(entry.fixture))
            misses.append(miss)
            if len(misses) == NEAR_MISS_LIMIT:
                break
        return misses


def _insert(buckets: dict[Any, list[_Entry]], key: Any, entry: _Entry) -> None:
    """Keep a bucket best first; the list is replaced, never changed, so a reader never sees it half-done."""
    entries = list(buckets.get(key, ()))
    bisect.insort(entries, entry, key=_best_first)
    buckets[key] = entries


def _best_first(entry: _Entry) -> tuple[int, int]:
    return (-len(entry.fixture.match), -entry.order)


GRAM = 4  # characters of a needle that index it; a shorter needle is checked on every lookup


class _NeedleIndex:
    """The turns of one matcher bucket, found by a piece of their ``contains`` needles.

    Turns that differ only in their matchers share a bucket, and checking each one's needle against the
    request made a lookup cost as much as the bucket is large (10,000 fixtures, one in ten with a
    needle: 2 to 3 times the cost with 10). Each turn is indexed here by the rarest GRAM characters of
    its longest needle: a request can only match turns whose piece occurs in its message at that
    position, and those are found with at most as many probes as the message or the index is long,
    whichever is shorter. Turns without a needle that long are checked every time.
    """

    def __init__(self, entries: Sequence[_Entry]) -> None:
        chosen = {entry.order: _longest_needle(entry) for entry in entries}
        counts: dict[tuple[int, str], int] = {}
        for position_needle in chosen.values():
            if position_needle is not None:
                position, needle = position_needle
                for gram in {needle[i : i + GRAM] for i in range(len(needle) - GRAM + 1)}:
                    counts[(position, gram)] = counts.get((position, gram), 0) + 1
        self.by_gram: dict[int, dict[str, list[_Entry]]] = {}  # message position -> piece -> turns
        self.unindexed: list[_Entry] = []
        for entry in entries:
            position_needle = chosen[entry.order]
            if position_needle is None:
                self.unindexed.append(entry)
                continue
            position, needle = position_needle
            gram = min(
                (needle[i : i + GRAM] for i in range(len(needle) - GRAM + 1)),
                key=lambda piece: counts[(position, piece)],
            )
            self.by_gram.setdefault(position, {}).setdefault(gram, []).append(entry)

    def candidates(self, messages: Sequence[Any]) -> list[_Entry]:
        """The turns whose indexed piece is in the request, and the unindexed ones; best first."""
        found = list(self.unindexed)
        for position, grams in self.by_gram.items():
            text = message_text(messages[position])
            if len(text) - GRAM + 1 <= len(grams):
                for piece in {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}:
                    found.extend(grams.get(piece, ()))
            else:
                for piece, entries in grams.items():
                    if piece in text:
                        found.extend(entries)
        found.sort(key=_best_first)
        return found


def _longest_needle(entry: _Entry) -> tuple[int, str] | None:
    needles = [
        (position, normalise_needle(matcher["contains"]))
        for position, matcher in entry.matchers
        if isinstance(matcher.get("contains"), str)
    ]
    needles = [(position, needle) for position, needle in needles if len(needle) >= GRAM]
    return max(needles, key=lambda item: len(item[1])) if needles else None


# -- explaining a near miss -------------------------------------------------------------------------


def _explain(
    entry: _Entry, body: dict[str, Any], messages: list[Any], canon: tuple[Canon, ...]
) -> tuple[tuple[float, ...], _Entry, NearMiss]:
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
            or _role(got) != _role(expected)
            or _scalar(got.get("name")) != _scalar(expected.get("name"))
        ):
            problem = _message_difference(i, expected, got)
        else:
            failure = matcher_failure(matchers[i], got)
            problem = f"message {i + 1} ({_role(expected)}): {failure}" if failure else None
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
        expected_text, got_text = _dump(expected)[:400], _dump(got)[:400]
    return difflib.SequenceMatcher(None, expected_text, got_text, autojunk=False).ratio()


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _count(n: int) -> str:
    return _plural(n, "message")


def _message_difference(i: int, expected: dict[str, Any], got: Any) -> str:
    where = f"message {i + 1}"
    expected_role, got_role = _role(expected), _role(got)
    if not isinstance(got, dict):
        return f"{where}: expected a {expected_role} message, got {short_json(got)}"
    if expected_role != got_role:
        return f"{where}: expected a {expected_role} message, got {got_role}"
    where = f"{where} ({expected_role})"
    if _scalar(expected.get("name")) != _scalar(got.get("name")):
        return f"{where}: expected name {_word(expected.get('name'))}, got {_word(got.get('name'))}"
    if expected_role == "assistant":
        if _assistant_content(expected.get("content")) != _assistant_content(got.get("content")):
            return f"{where}: {_texts(_display(expected.get('content')), _display(got.get('content')))}"
        return f"{where}: {_tool_call_difference(expected.get('tool_calls') or [], got.get('tool_calls') or [])}"
    if expected_role == "tool" and _scalar(expected.get("tool_call_id")) != _scalar(got.get("tool_call_id")):
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
        if _part(a, json_aware) != _part(b, json_aware):
            return f"part {n + 1}: {_part_difference(a, b, json_aware)}"
    return _texts(_display(expected), _display(got))


def _parts_of(content: Any) -> list[Any] | None:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return content
    return None


def _part_difference(expected: Any, got: Any, json_aware: bool) -> str:
    a, b = _part(expected, json_aware), _part(got, json_aware)
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
    return _dump(content)


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
        mine, theirs = _tool_calls([a])[0], _tool_calls([b])[0]
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
