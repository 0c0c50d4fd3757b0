"""Load fixture conversations from YAML or JSON files into checked, immutable records.

Users write these files by hand, so every mistake (a typo in a key, a list
that is a mapping, a regex that does not compile, a missing WAV) must stop the
server with ``file:line: what is wrong`` rather than a traceback, or worse,
silently never match. Lines come from YAML's node marks, which is why files are
composed into nodes before they are turned into Python values.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import difflib
import hashlib
import json
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from contract.core.spec import DOCUMENT_URI, Spec, SpecError, pointer_join
from contract.core.textfile import UnreadableFile, read_text
from contract.core.validate import ContractValidator, json_type, short_json

from .audio import read_wav, synthesize_wav
from .faults import FAULT_TYPES, parse_fault
from .scenario import REPEAT_LAST, THEN_POLICIES, Scenario, Step
from .turns import AssistantTurn, AudioReply, Pacing, PacingError

FIXTURE_SUFFIXES = (".yaml", ".yml", ".json")
# Bounds on what one file may cost: real fixtures are far below each, and a hostile or broken
# file past one is refused with its line before it costs memory or time.
MAX_FIXTURE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100  # nesting of mappings and lists (YAML's composer and Python's json recurse)
MAX_ALIAS_NODES = 10_000  # nodes that YAML aliases (*name) add when expanded, over the whole file
MAX_INT_DIGITS = 100  # a count or a number in a fixture needs far fewer; Python refuses past 4300
PYTHON_SOURCE = "<python>"

TOP_KEYS = ("name", "description", "match", "conversation", "stream")
MATCH_KEYS = ("model", "ssml_enabled", "context", "tools", "modalities", "response_format")
STREAM_KEYS = ("ttft_ms", "tokens_per_second", "jitter")
REPLY_KEYS = ("content", "tool_calls", "refusal", "audio", "usage", "fault", "finish_reason", "stream_default")
ASSISTANT_KEYS = ("role", "name", *REPLY_KEYS, "replies", "then")
USER_KEYS = ("role", "name", "content")
TOOL_KEYS = ("role", "content", "tool_call_id")
OTHER_ROLE_KEYS = ("role", "name", "content", "tool_call_id")
TOOL_CALL_KEYS = ("id", "type", "function")
FUNCTION_KEYS = ("name", "arguments")
AUDIO_KEYS = ("file", "duration_s", "transcript")
MATCHER_KEYS = ("contains", "regex")
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
USAGE_DETAIL_KEYS = {
    "prompt_tokens_details": ("audio_tokens", "cached_tokens"),
    "completion_tokens_details": (
        "accepted_prediction_tokens",
        "audio_tokens",
        "reasoning_tokens",
        "rejected_prediction_tokens",
    ),
}
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls")
MODALITIES = ("text", "audio")
# The response_format types a request can carry under the contract ("text" stands for none): a
# `json_object` match could never be met, since the contract refuses such a request.
RESPONSE_FORMAT_TYPES = ("text", "json_schema")

_CONTROL_CATEGORIES = ("Cc", "Zl", "Zp")  # C0, DEL, C1, and the Unicode line and paragraph separators

Path_ = tuple[Any, ...]  # a key path inside the fixture: ("conversation", 2, "tool_calls")


class FixtureError(Exception):
    """A fixture cannot be used; the message is ``file:line: what is wrong``."""


@dataclass(frozen=True)
class AudioFolder:
    """Where a fixture's ``audio.file`` is looked for, and the folder it must stay inside.

    A fixture names a WAV by a path relative to its own file; the path may not leave the fixtures
    folder (``..``, an absolute path), so a fixture, or a conversation posted to a running mock, cannot
    serve any WAV on the machine. ``root`` None: the fixture has no folder and may name no file.
    """

    base: Path
    root: Path | None

    def locate(self, file: str) -> Path | None:
        """The WAV's path, normalised so the OS reads what was checked; None when it leaves the folder."""
        if self.root is None:
            return None
        wav = Path(os.path.normpath(self.base / file))
        return wav if Path(os.path.abspath(wav)).is_relative_to(os.path.abspath(self.root)) else None


@dataclass(frozen=True)
class Fixture:
    """One conversation: the messages in order, and the replies the server plays back."""

    name: str
    source: Path
    match: dict[str, Any]
    conversation: tuple[dict[str, Any], ...]  # assistant turns as a client sends them back
    turns: dict[int, AssistantTurn]  # index in conversation -> reply
    pacing: Pacing
    line_of: dict[int, int]  # conversation index -> line (0 when unknown, e.g. built from Python)
    name_line: int = field(default=0, compare=False)  # line of ``name:``; 0 when defaulted or unknown
    scenarios: dict[int, Scenario] = field(default_factory=dict)  # turns that answer with a sequence

    def where(self, index: int | None = None) -> str:
        """``file:line`` of a conversation message (or of the name), for messages to users."""
        line = self.line_of.get(index, 0) if index is not None else self.name_line
        return f"{self.source}:{line}" if line else str(self.source)

    def replies(self) -> Iterator[tuple[int, AssistantTurn]]:
        """Every reply the fixture can send, with its turn index: each turn, or each step of its scenario."""
        for index, turn in sorted(self.turns.items()):
            scenario = self.scenarios.get(index)
            yield from ((index, step) for step in scenario.turns) if scenario else [(index, turn)]


# -- public entry points -----------------------------------------------------------------------


def load_fixtures(folder: str | Path) -> list[Fixture]:
    """Every fixture file under ``folder`` (sub-folders too), in path order; names must be unique."""
    fixtures = [load_fixture_file(path, root=folder) for path in fixture_files(folder)]
    check_unique_names(fixtures)
    return fixtures


def fixture_files(folder: str | Path) -> list[Path]:
    """The fixture files under ``folder``, in the order they load; hidden files and folders are skipped."""
    root = Path(folder)
    if not root.exists():
        raise FixtureError(f"{root}: no such folder")
    if not root.is_dir():
        raise FixtureError(f"{root}: not a folder")
    return sorted(
        (p for p in folder_files(root) if p.suffix.lower() in FIXTURE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def folder_files(root: Path) -> Iterator[Path]:
    """Every entry under ``root`` that is not hidden (nor in a hidden folder): fixtures and what they use.

    Entries that are not plain files are listed too when they might be taken for one (a symlink,
    a FIFO, a folder named ``x.yaml``): skipping them silently would start a server without the
    conversation the user thinks it has; loading one says what it is instead.

    A symlinked sub-folder is followed like a folder, but each real folder is visited once, so a link
    that points back up the tree (or twice at one folder) cannot make the walk loop or load a file twice.
    """
    seen = {os.path.realpath(root)}
    pending = [root]
    while pending:
        for path in _entries(pending.pop()):
            if path.name.startswith("."):
                continue
            if path.suffix.lower() in FIXTURE_SUFFIXES or not path.is_dir():
                yield path
            elif _first_visit(path, seen):
                pending.append(path)


def _entries(folder: Path) -> list[Path]:
    """The folder's entries in name order; none for a folder that cannot be read (as ``rglob`` did)."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _first_visit(folder: Path, seen: set[str]) -> bool:
    """True the first time the real folder behind ``folder`` is met (and remembers it)."""
    real = os.path.realpath(folder)
    if real in seen:
        return False
    seen.add(real)
    return True


def check_unique_names(fixtures: Iterable[Fixture]) -> None:
    """Raise FixtureError naming both files when two fixtures share a name."""
    by_name: dict[str, Fixture] = {}
    for fixture in fixtures:
        other = by_name.get(fixture.name)
        if other is not None:
            raise FixtureError(
                f"{fixture.source}:{fixture.name_line or 1}: fixture name {fixture.name!r} "
                f"is already used by {other.source}:{other.name_line or 1}; names must be unique"
            )
        by_name[fixture.name] = fixture


def load_fixture_file(path: str | Path, root: str | Path | None = None) -> Fixture:
    """One fixture file (``.yaml``, ``.yml`` or ``.json``), at most :data:`MAX_FIXTURE_BYTES` long.

    Its audio files must lie inside ``root``, the fixtures folder (by default the file's own folder).
    """
    source = Path(path)
    label = str(source)
    if source.suffix.lower() not in FIXTURE_SUFFIXES:
        raise FixtureError(f"{label}:1: not a fixture file (expected .yaml, .yml or .json)")
    try:
        text = read_text(source, limit=MAX_FIXTURE_BYTES)
    except UnreadableFile as exc:
        raise FixtureError(f"{label}:{exc.line}: {exc.reason}") from None
    return fixture_from_text(text, source, root)


def fixture_document(text: str, source: Path) -> tuple[Any, dict[Path_, int]]:
    """A fixture file's text parsed as start-up parses it (YAML or JSON by the suffix), with each value's line."""
    label = str(source)
    return _parse_json(text, label) if source.suffix.lower() == ".json" else _parse_yaml(text, label)


def fixture_from_text(text: str, source: Path, root: str | Path | None = None) -> Fixture:
    """The fixture a file holding ``text`` (within MAX_FIXTURE_BYTES) at ``source`` loads as: what the recorder
    checks before it writes, so that no file it writes stops the next start-up."""
    label = str(source)
    data, lines = fixture_document(text, source)
    reader = _Reader(label, lines)
    try:
        files = AudioFolder(source.parent, Path(root) if root is not None else source.parent)
        return _build(data, reader, source, default_name=source.stem, files=files)
    except RecursionError:  # a JSON text inside a string (tool-call arguments, JSON content) nested too deep
        raise FixtureError(
            f"{label}:1: a JSON text in this fixture is nested more than the interpreter can follow"
        ) from None


def fixture_from_dict(data: dict[str, Any], source: Path | str = PYTHON_SOURCE, name: str | None = None) -> Fixture:
    """A fixture from a Python mapping in the file format (tests add conversations this way).

    ``name`` wins over a ``name`` key; with neither, the name is derived from the content,
    so the same conversation always gets the same name (and the same generated ids). Audio files
    are found next to ``source`` when it is a file, in the current folder for :data:`PYTHON_SOURCE`;
    another source in angle brackets (``<api>``: posted to a running mock) names no folder, so it
    may use synthesised audio only.
    """
    source_path = Path(source)
    is_file = str(source) != PYTHON_SOURCE
    data = copy.deepcopy(data)
    if name is not None:
        if not isinstance(data, dict):
            _Reader(str(source), None).fail((), f"a fixture must be a mapping, got {_kind(data)}")
        data["name"] = name
    default_name = source_path.stem if is_file else _content_name(data)
    base_dir = source_path.parent if is_file else Path.cwd()
    has_folder = str(source) == PYTHON_SOURCE or not _is_pseudo_source(str(source))
    files = AudioFolder(base_dir, base_dir if has_folder else None)
    return _build(data, _Reader(str(source), None), source_path, default_name=default_name, files=files)


def _is_pseudo_source(source: str) -> bool:
    """``<python>``, ``<api>``: a source that names no file."""
    return source.startswith("<") and source.endswith(">")


def check_fixture_messages(fixture: Fixture, validator: ContractValidator) -> None:
    """Every message of the conversation must be one a client could send under the contract.

    Assistant turns are checked in the form a client sends them back; a message whose
    content is a matcher is checked with a placeholder string in its place.
    """
    pointer = messages_item_pointer(validator.spec)
    for index, message in enumerate(fixture.conversation):
        instance = message
        if matcher_of(message) is not None:
            instance = {**message, "content": "(matcher)"}
        errors = validator.validate_at(pointer, instance)
        if errors:
            raise FixtureError(f"{fixture.where(index)}: message {index + 1}: {errors[0]}")


def messages_item_pointer(spec: Spec, path: str = "/chat/completions", method: str = "post") -> str:
    """JSON pointer of the schema of one request message, found through the operation's body."""
    operation = spec.operation(path, method)
    media = operation.request_body.get("application/json") or next(iter(operation.request_body.values()), None)
    if media is None:
        raise SpecError(f"{spec.source}: {method.upper()} {path} documents no request body")
    pointer = media.pointer
    node = spec.resolve(pointer)
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and pointer not in seen:
        seen.add(pointer)
        pointer = node["$ref"].removeprefix(DOCUMENT_URI)
        node = spec.resolve(pointer)
    items = pointer_join(pointer, "properties", "messages", "items")
    spec.resolve(items)  # SpecError (one line) when the document has no messages array here
    return items


def matcher_of(message: dict[str, Any]) -> dict[str, str] | None:
    """The matcher of a user or system message (``{contains: ...}`` / ``{regex: ...}``), if it has one."""
    content = message.get("content")
    if message.get("role") in ("user", "system") and isinstance(content, dict):
        return content
    return None


# -- reading files with line numbers ---------------------------------------------------------------

# Events come from libyaml where PyYAML was built with it (a 1 MB file: 0.02 s instead of 1 s); the
# composer stays PyYAML's Python one, so the bounds below are checked as each node is composed.
_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))
if _LIBYAML:
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]

    _EVENT_SOURCE: tuple[type, ...] = (_CParser,)
else:
    _EVENT_SOURCE = (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)


class _FixtureLoader(Composer, SafeConstructor, Resolver, *_EVENT_SOURCE):  # type: ignore[misc]
    """SafeLoader without the timestamp rule, and with bounds that a hostile file cannot get past.

    ``content: 2024-01-01`` stays the text the user wrote. Composing is where a YAML file can be made
    to explode: an alias (``*name``) shares its anchor's node, so a few hundred bytes can stand for
    billions of nodes ("billion laughs") that any later walk over the data expands. So each alias is
    charged the size of what it stands for, and the file is refused at the alias that passes
    :data:`MAX_ALIAS_NODES` (or that refers to a collection it is inside of), before anything is
    expanded. Nesting is refused past :data:`MAX_DEPTH`, before the recursive composer overflows.
    """

    def __init__(self, text: str, label: str) -> None:
        if _LIBYAML:
            _CParser.__init__(self, text)
        else:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.label = label
        self._depth = 0
        self._alias_nodes = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                self._refuse(line, f"alias *{event.anchor} refers to a collection it is inside of")
            node = cast(Node, Composer.compose_node(self, parent, index))  # an alias names a composed node
            self._alias_nodes += self._expanded_size(node)
            if self._alias_nodes > MAX_ALIAS_NODES:
                self._refuse(
                    line,
                    f"YAML aliases (*{event.anchor} and those before it) expand to more than "
                    f"{MAX_ALIAS_NODES:,} values; write the values out, or use fewer aliases",
                )
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self._refuse(line, f"nested more than {MAX_DEPTH} levels deep")
        anchor = getattr(event, "anchor", None)
        opened = anchor if isinstance(anchor, str) and isinstance(event, yaml.CollectionStartEvent) else None
        if opened is not None:
            self._open_anchors.add(opened)
        try:
            return cast(Node, Composer.compose_node(self, parent, index))  # the parser checked a node is here
        finally:
            self._depth -= 1
            if opened is not None:
                self._open_anchors.discard(opened)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = sum(ch.isdigit() for ch in node.value)
        if digits > MAX_INT_DIGITS:
            self._refuse(
                node.start_mark.line + 1,
                f"a number of {digits} digits; numbers in a fixture have at most {MAX_INT_DIGITS}",
            )
        return SafeConstructor.construct_yaml_int(self, node)

    def _expanded_size(self, node: Node) -> int:
        """How many nodes ``node`` stands for once every alias inside it is written out (memoised)."""
        size = self._sizes.get(id(node))
        if size is None:
            size = 1
            if isinstance(node, MappingNode):
                size += sum(self._expanded_size(k) + self._expanded_size(v) for k, v in node.value)
            elif isinstance(node, SequenceNode):
                size += sum(self._expanded_size(item) for item in node.value)
            self._sizes[id(node)] = size
        return size

    def _refuse(self, line: int, problem: str) -> NoReturn:
        raise FixtureError(f"{self.label}:{line}: {problem}")


_FixtureLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FixtureLoader.add_constructor("tag:yaml.org,2002:int", _FixtureLoader.construct_yaml_int)


def _parse_yaml(text: str, label: str) -> tuple[Any, dict[Path_, int]]:
    try:
        loader = _FixtureLoader(text, label)
    except yaml.reader.ReaderError as exc:  # the Python reader refuses NUL and other control characters at once
        raise FixtureError(f"{label}:{_reader_line(text, exc)}: {_reader_problem(exc)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise FixtureError(f"{label}:1: the file is empty; a fixture needs a 'conversation' list")
        lines: dict[Path_, int] = {}
        _record_lines(node, (), lines, label, set())
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:  # libyaml's reader refuses them as it reaches them
        raise FixtureError(f"{label}:{_reader_line(text, exc)}: {_reader_problem(exc)}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "cannot parse"
        raise FixtureError(f"{label}:{line}: YAML syntax error: {problem} (column {column})") from None
    except yaml.YAMLError as exc:
        raise FixtureError(f"{label}:1: YAML error: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
    return data, lines


def _reader_problem(exc: yaml.reader.ReaderError) -> str:
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    what = "a NUL character (U+0000)" if code == 0 else f"the control character U+{code:04X}"
    return f"{what}, which YAML does not allow in a file"


def _reader_line(text: str, exc: yaml.reader.ReaderError) -> int:
    """The line of the refused character (its first occurrence: the reader stops there)."""
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    found = text.find(chr(code)) if code < 0x110000 else -1
    return _line_at(text, found if found >= 0 else exc.position)


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, max(0, position)) + 1


class _LongNumber(Exception):
    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        self.digits = digits


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _LongNumber(digits)
    return int(digits)


_JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep_line(text: str) -> int:
    """The line of the first bracket that nests deeper than :data:`MAX_DEPTH` (1 if none is found)."""
    depth = 0
    for match in _JSON_BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return _line_at(text, match.start())
        elif token in "]}":
            depth -= 1
    return 1


def _parse_json(text: str, label: str) -> tuple[Any, dict[Path_, int]]:
    try:
        data = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{label}:{exc.lineno}: JSON syntax error: {exc.msg} (column {exc.colno})") from None
    except _LongNumber as exc:
        raise FixtureError(
            f"{label}:{_line_at(text, text.find(exc.digits))}: a number of "
            f"{len(exc.digits.lstrip('-'))} digits; numbers in a fixture have at most "
            f"{MAX_INT_DIGITS}"
        ) from None
    except RecursionError:
        raise FixtureError(f"{label}:{_too_deep_line(text)}: nested more than {MAX_DEPTH} levels deep") from None
    lines: dict[Path_, int] = {}
    try:  # JSON is (nearly) YAML: borrow YAML's marks for line numbers, its duplicate-key and depth checks
        loader = _FixtureLoader(text, label)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is not None:
            _record_lines(node, (), lines, label, set())
    except yaml.YAMLError:
        lines = {}  # lines unknown: errors point at line 1
    return data, lines


_MAX_NODES = 100_000


def _record_lines(node: Node, path: Path_, lines: dict[Path_, int], label: str, ancestors: set[int]) -> None:
    """Map each key path to its line; reject duplicate keys, which YAML would silently collapse."""
    if id(node) in ancestors or len(lines) > _MAX_NODES:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        ancestors = ancestors | {id(node)}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key == "<<":
                continue
            if key in first_line:
                raise FixtureError(f"{label}:{line}: duplicate key {key!r} (first at line {first_line[key]})")
            first_line[key] = line
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), lines, label, ancestors)
    elif isinstance(node, SequenceNode):
        ancestors = ancestors | {id(node)}
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines, label, ancestors)


@dataclass
class _Reader:
    """Where things are in one fixture source, and how to say what is wrong there."""

    label: str
    lines: dict[Path_, int] | None  # None: built from Python, no lines

    def line(self, path: Path_) -> int:
        if self.lines is None:
            return 0
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def where(self, path: Path_) -> str:
        if self.lines is None:
            return f"{self.label}: {_render_path(path)}" if path else self.label
        return f"{self.label}:{self.line(path)}"

    def fail(self, path: Path_, message: str) -> NoReturn:
        raise FixtureError(f"{self.where(path)}: {message}")

    def check_keys(self, mapping: dict[Any, Any], known: Iterable[str], path: Path_, what: str) -> None:
        known = tuple(known)
        for key in mapping:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
                self.fail((*path, key), f"unknown key {key!r} in {what}{hint}")


def _render_path(path: Path_) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


# -- building a fixture ------------------------------------------------------------------------------


def _build(data: Any, reader: _Reader, source: Path, default_name: str, files: AudioFolder) -> Fixture:
    if not isinstance(data, dict):
        reader.fail((), f"a fixture must be a mapping with a 'conversation' list, got {_kind(data)}")
    reader.check_keys(data, TOP_KEYS, (), "the fixture")
    _check_json_values(data, (), reader)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        reader.fail(("name",), f"name must be a non-empty string, got {short_json(name)}")
    control = next((ch for ch in name if unicodedata.category(ch) in _CONTROL_CATEGORIES), None)
    if control is not None:
        reader.fail(
            ("name",),
            f"name {short_json(name)} holds the control character U+{ord(control):04X}; a name goes into "
            "headers and log lines, so it must be printable text",
        )
    if "description" in data and not isinstance(data["description"], str):
        reader.fail(("description",), "description must be a string")
    match = _parse_match(data.get("match"), reader)
    pacing = _parse_stream(data.get("stream"), reader)
    json_content = match.get("response_format") == "json_schema"
    conversation, turns, scenarios, line_of = _parse_conversation(data, reader, name, files, json_content)
    return Fixture(
        name=name,
        source=source,
        match=match,
        conversation=tuple(conversation),
        turns=turns,
        pacing=pacing,
        line_of=line_of,
        name_line=reader.line(("name",)) if "name" in data else 0,
        scenarios=scenarios,
    )


def _check_json_values(value: Any, path: Path_, reader: _Reader) -> None:
    """Refuse what a strict JSON parser would: NaN and infinities, and YAML-only values (sets, timestamps, bytes).

    The server sends fixture values as JSON; ``json.dumps`` writes ``NaN`` that clients then refuse, and
    fails outright on a set or a date, so each is named here with its line instead.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                reader.fail(path, f"a key {_yaml_kind(key)} is not JSON; write the key as a string")
            _check_json_values(item, (*path, key), reader)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            _check_json_values(item, (*path, number), reader)
    elif isinstance(value, float) and not math.isfinite(value):
        reader.fail(
            path, f"{_render_path(path)} is {value!r}: NaN and Infinity are not JSON, and strict parsers refuse them"
        )
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        reader.fail(path, f"{_render_path(path)} is {_yaml_kind(value)}, which is not JSON; write it as a string")


def _yaml_kind(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return "a set (!!set)"
    if isinstance(value, (bytes, bytearray)):
        return "binary data (!!binary)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a timestamp (!!timestamp)"
    return "a list used as a key" if isinstance(value, tuple) else f"a {type(value).__name__}"


class _NotJSON(ValueError):
    """A JSON text holds NaN or an infinity (or a number too large for a float, which reads as one)."""


def _strict_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotJSON(f"the number {text} is out of range")
    return number


def _no_constant(text: str) -> NoReturn:
    raise _NotJSON(f"{text} is not JSON")


def strict_json_loads(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and out-of-range numbers (``_NotJSON``), as strict parsers do."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_strict_float)


def _parse_match(raw: Any, reader: _Reader) -> dict[str, Any]:
    path: Path_ = ("match",)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        reader.fail(path, f"match must be a mapping of conditions, got {_kind(raw)}")
    reader.check_keys(raw, MATCH_KEYS, path, "match")
    match = copy.deepcopy(raw)
    if "model" in raw and (not isinstance(raw["model"], str) or not raw["model"]):
        reader.fail((*path, "model"), f"match.model must be a model name, got {short_json(raw['model'])}")
    if "ssml_enabled" in raw and not isinstance(raw["ssml_enabled"], bool):
        reader.fail(
            (*path, "ssml_enabled"), f"match.ssml_enabled must be true or false, got {short_json(raw['ssml_enabled'])}"
        )
    if "context" in raw and not isinstance(raw["context"], dict):
        reader.fail((*path, "context"), f"match.context must be a mapping, got {_kind(raw['context'])}")
    if "tools" in raw:
        tools = raw["tools"]
        if not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools):
            reader.fail((*path, "tools"), f"match.tools must be a list of tool names, got {short_json(tools)}")
    if "modalities" in raw:
        modalities = raw["modalities"]
        if not isinstance(modalities, list) or not modalities or any(m not in MODALITIES for m in modalities):
            reader.fail(
                (*path, "modalities"),
                f"match.modalities must be a non-empty list of {' / '.join(MODALITIES)}, got {short_json(modalities)}",
            )
    if "response_format" in raw and raw["response_format"] not in RESPONSE_FORMAT_TYPES:
        reader.fail(
            (*path, "response_format"),
            f"match.response_format must be one of "
            f"{', '.join(RESPONSE_FORMAT_TYPES)} (the request's "
            f"response_format type), got {short_json(raw['response_format'])}",
        )
    return match


def _parse_stream(raw: Any, reader: _Reader) -> Pacing:
    path: Path_ = ("stream",)
    if raw is None:
        return Pacing()
    if not isinstance(raw, dict):
        reader.fail(path, f"stream must be a mapping (ttft_ms, tokens_per_second, jitter), got {_kind(raw)}")
    reader.check_keys(raw, STREAM_KEYS, path, "stream")
    values: dict[str, float | None] = {}
    for key in STREAM_KEYS:
        value = raw.get(key)
        if value is not None and not _is_number(value):
            reader.fail((*path, key), f"stream.{key} must be a number, got {short_json(value)}")
        values[key] = None if value is None else float(value)
    try:
        return Pacing(**values)
    except PacingError as exc:  # the bounds are Pacing's own, the same as on the command line
        reader.fail((*path, exc.field), f"stream.{exc}")


def _parse_conversation(
    data: dict[str, Any], reader: _Reader, name: str, files: AudioFolder, json_content: bool
) -> tuple[list[dict[str, Any]], dict[int, AssistantTurn], dict[int, Scenario], dict[int, int]]:
    path: Path_ = ("conversation",)
    if "conversation" not in data:
        reader.fail((), "missing 'conversation': the list of messages, with the assistant turns to play back")
    raw = data["conversation"]
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else _kind(raw)
        reader.fail(path, f"conversation must be a non-empty list of messages, got {what}")
    conversation: list[dict[str, Any]] = []
    turns: dict[int, AssistantTurn] = {}
    scenarios: dict[int, Scenario] = {}
    line_of: dict[int, int] = {}
    pending_ids: list[str] = []  # ids of the last turn's tool calls, for tool messages that omit theirs
    for index, message in enumerate(raw):
        where: Path_ = (*path, index)
        line_of[index] = reader.line(where)
        if not isinstance(message, dict):
            reader.fail(where, f"message {index + 1} must be a mapping with a role, got {_kind(message)}")
        if "role" not in message:
            reader.fail(where, f"message {index + 1} has no role (system, user, assistant or tool)")
        role = message["role"]
        if not isinstance(role, str):
            reader.fail((*where, "role"), f"role must be a string, got {short_json(role)}")
        if role == "assistant":
            scenario, echoed = _parse_turn(message, where, index, name, files, reader, json_content)
            turns[index] = scenario.steps[0].turn
            if len(scenario.steps) > 1:
                scenarios[index] = scenario
            conversation.append(echoed)
            pending_ids = [call["id"] for call in echoed.get("tool_calls", ())]
        elif role in ("user", "system"):
            reader.check_keys(message, USER_KEYS, where, f"a {role} message")
            content = message.get("content")
            if isinstance(content, dict):
                _check_matcher(content, (*where, "content"), reader)
            conversation.append(copy.deepcopy(message))
        elif role == "tool":
            reader.check_keys(message, TOOL_KEYS, where, "a tool message")
            message = copy.deepcopy(message)
            call_id = message.get("tool_call_id")
            if call_id is None and pending_ids:
                message["tool_call_id"] = pending_ids.pop(0)
            elif call_id in pending_ids:
                pending_ids.remove(call_id)
            conversation.append(message)
        else:  # the contract check names what is wrong with the role itself
            reader.check_keys(message, OTHER_ROLE_KEYS, where, "a message")
            conversation.append(copy.deepcopy(message))
    if not turns:
        reader.fail(path, "the conversation has no assistant turn, so the server would have nothing to reply")
    return conversation, turns, scenarios, line_of


def _check_matcher(matcher: dict[str, Any], path: Path_, reader: _Reader) -> None:
    reader.check_keys(matcher, MATCHER_KEYS, path, "a content matcher")
    if not matcher:
        reader.fail(path, "an empty content matcher; use {contains: TEXT} or {regex: PATTERN}")
    for key in MATCHER_KEYS:
        if key in matcher and (not isinstance(matcher[key], str) or not matcher[key]):
            reader.fail((*path, key), f"{key} must be a non-empty string, got {short_json(matcher[key])}")
    if "regex" in matcher:
        try:
            re.compile(matcher["regex"])
        except re.error as exc:
            reader.fail((*path, "regex"), f"bad regex {matcher['regex']!r}: {exc.msg} at position {exc.pos}")


def _parse_turn(
    message: dict[str, Any], path: Path_, index: int, name: str, files: AudioFolder, reader: _Reader, json_content: bool
) -> tuple[Scenario, dict[str, Any]]:
    """A turn's replies (one, or the steps of its ``replies`` / ``fault.times``) and the message a client echoes."""
    reader.check_keys(message, ASSISTANT_KEYS, path, "an assistant turn")
    speaker = _optional_string(message, "name", path, reader)
    if "replies" in message:
        scenario = _parse_replies(message, path, index, name, files, reader, json_content)
    else:
        if "then" in message:
            reader.fail(
                (*path, "then"),
                "then says what plays after the last of the turn's replies, so it needs a 'replies' list",
            )
        scenario = Scenario(
            _parse_reply(message, path, index, name, files, reader, json_content, f"message {index + 1}")
        )
    # A later turn matches when the client sends back the last reply that says something.
    said = [step.turn for step in scenario.steps if _says_something(step.turn)]
    last = said[-1] if said else scenario.steps[-1].turn
    echoed: dict[str, Any] = {"role": "assistant", "content": last.content}
    if speaker is not None:
        echoed["name"] = speaker
    if last.tool_calls:
        echoed["tool_calls"] = copy.deepcopy(list(last.tool_calls))
    return scenario, echoed


def _parse_replies(
    message: dict[str, Any], path: Path_, index: int, name: str, files: AudioFolder, reader: _Reader, json_content: bool
) -> Scenario:
    for key in message:
        if key in REPLY_KEYS:
            reader.fail((*path, key), f"{key!r} belongs inside each entry of this turn's replies, not next to them")
    raw = message["replies"]
    where: Path_ = (*path, "replies")
    if not isinstance(raw, list) or not raw:
        what = "an empty list" if isinstance(raw, list) else _kind(raw)
        reader.fail(
            where, f"replies must be a non-empty list of replies, played in order to successive requests, got {what}"
        )
    then = message.get("then", REPEAT_LAST)
    if then not in THEN_POLICIES:
        reader.fail(
            (*path, "then"),
            f"then must be one of {', '.join(THEN_POLICIES)} (what plays after the last reply), got {short_json(then)}",
        )
    steps: list[Step] = []
    for number, reply in enumerate(raw):
        at: Path_ = (*where, number)
        if not isinstance(reply, dict):
            reader.fail(
                at,
                f"reply {number + 1} must be a mapping like an assistant turn "
                f"(content, tool_calls, fault, ...), got {_kind(reply)}",
            )
        reader.check_keys(reply, REPLY_KEYS, at, "a reply")
        steps.extend(_parse_reply(reply, at, index, name, files, reader, json_content, f"reply {number + 1}"))
    return Scenario(tuple(steps), then)


def _parse_reply(
    message: dict[str, Any],
    path: Path_,
    index: int,
    name: str,
    files: AudioFolder,
    reader: _Reader,
    json_content: bool,
    what: str,
) -> tuple[Step, ...]:
    """One reply; a fault with ``times: N`` makes it two steps: N plays with the fault, then without."""
    content = _optional_string(message, "content", path, reader)
    if json_content and content is not None:
        try:
            strict_json_loads(content)
        except json.JSONDecodeError as exc:
            reader.fail(
                (*path, "content"),
                "this fixture matches response_format json_schema, so its content "
                f"must be JSON: {exc.msg} (column {exc.colno})",
            )
        except _NotJSON as exc:
            reader.fail(
                (*path, "content"),
                f"this fixture matches response_format json_schema, so its content must be strict JSON: {exc}",
            )
    refusal = _optional_string(message, "refusal", path, reader)
    tool_calls = _parse_tool_calls(message, path, index, name, reader)
    audio = _parse_audio(message.get("audio"), (*path, "audio"), index, name, files, reader)
    usage = _parse_usage(message.get("usage"), (*path, "usage"), reader)
    fault, times = _parse_fault(message.get("fault"), (*path, "fault"), reader)
    finish_reason = message.get("finish_reason")
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        reader.fail(
            (*path, "finish_reason"),
            f"finish_reason must be one of {', '.join(FINISH_REASONS)}, got {short_json(finish_reason)}",
        )
    if finish_reason == "tool_calls" and not tool_calls:
        reader.fail((*path, "finish_reason"), "finish_reason tool_calls needs tool_calls in the same turn")
    stream_default = message.get("stream_default")
    if stream_default is not None and not isinstance(stream_default, bool):
        reader.fail(
            (*path, "stream_default"),
            f"stream_default must be true (a stream) or false (one JSON body), got {short_json(stream_default)}",
        )
    turn = AssistantTurn(
        content=content,
        tool_calls=tuple(copy.deepcopy(tool_calls)),
        refusal=refusal,
        audio=audio,
        usage=usage,
        fault=fault,
        finish_reason=finish_reason,
        stream_default=stream_default,
        source=reader.where(path),
    )
    if not _says_something(turn):
        if times:
            reader.fail(
                (*path, "fault", "times"),
                f"after the fault's {times} time(s) this reply plays, so it "
                "needs content, tool_calls, refusal or audio",
            )
        if not (fault and fault.get("type") == "http_error"):
            reader.fail(
                path, f"assistant turn ({what}) has nothing to say: give it content, tool_calls, refusal or audio"
            )
    if not times:
        return (Step(turn),)
    return Step(turn, times), Step(dataclasses.replace(turn, fault=None))


def _says_something(turn: AssistantTurn) -> bool:
    return bool((turn.content or "").strip()) or bool(turn.tool_calls) or bool(turn.refusal) or turn.audio is not None


def _optional_string(message: dict[str, Any], key: str, path: Path_, reader: _Reader) -> str | None:
    value = message.get(key)
    if value is not None and not isinstance(value, str):
        reader.fail((*path, key), f"{key} must be a string, got {_kind(value)} {short_json(value)}")
    return value


def _parse_tool_calls(
    message: dict[str, Any], path: Path_, index: int, name: str, reader: _Reader
) -> list[dict[str, Any]]:
    raw = message.get("tool_calls")
    where: Path_ = (*path, "tool_calls")
    if raw is None:
        return []
    if not isinstance(raw, list):
        reader.fail(where, f"tool_calls must be a list (several entries are parallel calls), got {_kind(raw)}")
    if not raw:
        reader.fail(where, "tool_calls is empty; leave it out or give at least one call")
    calls: list[dict[str, Any]] = []
    for number, call in enumerate(raw):
        at: Path_ = (*where, number)
        if not isinstance(call, dict):
            reader.fail(at, f"tool call {number + 1} must be a mapping with a function, got {_kind(call)}")
        reader.check_keys(call, TOOL_CALL_KEYS, at, "a tool call")
        if call.get("type", "function") != "function":
            reader.fail((*at, "type"), f"tool call type must be function, got {short_json(call.get('type'))}")
        function = call.get("function")
        if not isinstance(function, dict):
            reader.fail(
                at if function is None else (*at, "function"),
                f"tool call {number + 1} needs function: {{name, arguments}}",
            )
        reader.check_keys(function, FUNCTION_KEYS, (*at, "function"), "a tool call's function")
        function_name = function.get("name")
        if not isinstance(function_name, str) or not function_name:
            reader.fail((*at, "function", "name"), f"tool call {number + 1} needs a function name")
        arguments = _arguments(function.get("arguments", {}), (*at, "function", "arguments"), reader)
        call_id = call.get("id")
        if call_id is None:
            digest = hashlib.sha256(f"{name}\0{index}\0{number}".encode()).hexdigest()
            call_id = f"call_{digest[:24]}"
        elif not isinstance(call_id, str) or not call_id:
            reader.fail((*at, "id"), f"tool call id must be a non-empty string, got {short_json(call_id)}")
        if any(existing["id"] == call_id for existing in calls):
            reader.fail((*at, "id"), f"tool call id {call_id!r} is used twice in this turn")
        calls.append({"id": call_id, "type": "function", "function": {"name": function_name, "arguments": arguments}})
    return calls


def _arguments(value: Any, path: Path_, reader: _Reader) -> str:
    """Tool-call arguments as the JSON text the server streams; a mapping is encoded for the user."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        reader.fail(path, f"arguments must be a JSON object, as a string or a mapping, got {_kind(value)}")
    try:
        parsed = strict_json_loads(value)
    except json.JSONDecodeError as exc:
        reader.fail(path, f"arguments are not JSON: {exc.msg} (column {exc.colno}) in {short_json(value)}")
    except _NotJSON as exc:
        reader.fail(path, f"arguments are not strict JSON: {exc}, which client parsers refuse")
    if not isinstance(parsed, dict):
        reader.fail(path, f"arguments must encode a JSON object, got {json_type(parsed)}")
    return value


def _parse_audio(
    raw: Any, path: Path_, index: int, name: str, files: AudioFolder, reader: _Reader
) -> AudioReply | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        reader.fail(path, "audio must be {file: NAME.wav, transcript: ...} or {duration_s: N, transcript: ...}")
    reader.check_keys(raw, AUDIO_KEYS, path, "audio")
    transcript = raw.get("transcript")
    if not isinstance(transcript, str) or not transcript.strip():
        reader.fail(
            path if "transcript" not in raw else (*path, "transcript"), "audio needs a transcript (the words spoken)"
        )
    if ("file" in raw) == ("duration_s" in raw):
        reader.fail(path, "audio needs exactly one of file (a WAV next to the fixture) or duration_s (synthesised)")
    if "file" in raw:
        file = raw["file"]
        if not isinstance(file, str) or not file:
            reader.fail((*path, "file"), f"audio.file must be a file name, got {short_json(file)}")
        wav_path = _audio_path(file, (*path, "file"), files, reader)
        if not wav_path.is_file():
            reader.fail((*path, "file"), f"audio file {file!r} not found (looked for {wav_path})")
        try:
            wav = read_wav(wav_path)
        except ValueError as exc:
            reader.fail((*path, "file"), f"audio file {file!r}: {exc}")
        return AudioReply(wav=wav, transcript=transcript, source=wav_path)
    duration = raw["duration_s"]
    seed = int.from_bytes(hashlib.sha256(f"{name}\0{index}".encode()).digest()[:4], "big")
    try:
        wav = synthesize_wav(duration, seed=seed)
    except ValueError as exc:
        reader.fail((*path, "duration_s"), f"audio.duration_s: {exc}")
    return AudioReply(wav=wav, transcript=transcript)


def _audio_path(file: str, path: Path_, files: AudioFolder, reader: _Reader) -> Path:
    """The WAV's path inside the fixtures folder; a path that leaves it is refused before it is looked at."""
    if files.root is None:
        reader.fail(
            path,
            "audio.file is not accepted for a conversation added at run time (it has no fixtures folder); "
            "use audio.duration_s, or put the fixture and its WAV in the fixtures folder",
        )
    wav_path = files.locate(file)
    if wav_path is None:
        reader.fail(
            path,
            f"audio file {file!r} is outside the fixtures folder; give a path relative to the fixture file, "
            "inside the folder",
        )
    return wav_path


def _parse_usage(raw: Any, path: Path_, reader: _Reader) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        reader.fail(path, f"usage must be a mapping of token counts, got {_kind(raw)}")
    reader.check_keys(raw, USAGE_KEYS, path, "usage")
    for key, value in raw.items():
        if key in USAGE_DETAIL_KEYS:
            if not isinstance(value, dict):
                reader.fail((*path, key), f"usage.{key} must be a mapping of token counts")
            reader.check_keys(value, USAGE_DETAIL_KEYS[key], (*path, key), f"usage.{key}")
            for detail, count in value.items():
                if not _is_count(count):
                    reader.fail((*path, key, detail), f"usage.{key}.{detail} must be a whole number >= 0")
        elif not _is_count(value):
            reader.fail((*path, key), f"usage.{key} must be a whole number >= 0, got {short_json(value)}")
    if all(k in raw for k in ("prompt_tokens", "completion_tokens", "total_tokens")):
        expected = raw["prompt_tokens"] + raw["completion_tokens"]
        if raw["total_tokens"] != expected:
            reader.fail(
                (*path, "total_tokens"),
                f"usage.total_tokens is {raw['total_tokens']}, but prompt_tokens + completion_tokens is {expected}",
            )
    return copy.deepcopy(raw)


def _parse_fault(raw: Any, path: Path_, reader: _Reader) -> tuple[dict[str, Any] | None, int]:
    """The fault without its ``times``, and that count (0: every request gets the fault)."""
    if raw is None:
        return None, 0
    if not isinstance(raw, dict):
        reader.fail(path, f"fault must be a mapping with a type, got {_kind(raw)}")
    kind = raw.get("type")
    if kind not in FAULT_TYPES:
        close = difflib.get_close_matches(str(kind), FAULT_TYPES, n=1) if isinstance(kind, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else f" (one of {', '.join(FAULT_TYPES)})"
        reader.fail(
            (*path, "type") if "type" in raw else path,
            f"fault needs a type{hint}" if kind is None else f"unknown fault type {short_json(kind)}{hint}",
        )
    fault = copy.deepcopy(raw)
    times = fault.pop("times", 0)
    if "times" in raw and (not _is_count(times) or times < 1):
        reader.fail(
            (*path, "times"),
            "fault.times must be a whole number, 1 or more (the first N requests "
            f"get the fault, later ones the reply), got {short_json(raw['times'])}",
        )
    try:
        parse_fault(fault)
    except ValueError as exc:
        bad = next((key for key in fault if key != "type" and (repr(key) in str(exc) or f": {key} " in str(exc))), None)
        reader.fail((*path, bad) if bad is not None else path, str(exc))
    return fault, times


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _content_name(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return f"python-{digest[:10]}"


def _kind(value: Any) -> str:
    """The kind of a value in the words of a YAML writer."""
    kind = json_type(value)
    return {
        "object": "a mapping",
        "array": "a list",
        "null": "nothing",
        "integer": "a number",
        "number": "a number",
        "boolean": "true/false",
    }.get(kind, f"a {kind}")
