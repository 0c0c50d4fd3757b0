"""Load fixture conversations from YAML or JSON files into checked, immutable records.

Users write these files by hand, so every mistake (a typo in a key, a list
that is a mapping, a regex that does not compile, a missing WAV) must stop the
server with ``file:line: what is wrong`` rather than a traceback, or worse,
silently never match. This module finds the files and checks a fixture's top
level; ``fixture_reader`` reads a file with the line of each value, and
``fixture_parse`` checks the conversation and the turns it plays back.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import math
import os
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.core.schemas import is_finite_number
from contract.core.spec import DOCUMENT_URI, Spec, SpecError, pointer_join
from contract.core.textfile import UnreadableFile, read_text
from contract.core.validate import ContractValidator, short_json

from .embedding_pins import PinnedVector, parse_pins
from .faults import FAULT_TYPES
from .fixture_parse import (
    FINISH_REASONS,
    OTHER_ROLE_KEYS,
    USAGE_DETAIL_KEYS,
    USER_KEYS,
    AudioFolder,
    FixtureContext,
    ParsedConversation,
    parse_conversation,
    value_kind,
)
from .fixture_reader import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_INT_DIGITS,
    FixtureError,
    KeyPath,
    SourceLines,
    read_json,
    read_yaml,
    render_path,
)
from .scenario import Scenario
from .strict_json import strict_json_loads
from .turns import AssistantTurn, Pacing, PacingError

# The fixture format's public names; some are defined in the modules this one is split into.
__all__ = [
    "FAULT_TYPES",
    "FINISH_REASONS",
    "FIXTURE_SUFFIXES",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FIXTURE_BYTES",
    "MAX_INT_DIGITS",
    "OTHER_ROLE_KEYS",
    "PYTHON_SOURCE",
    "USAGE_DETAIL_KEYS",
    "USER_KEYS",
    "AudioFolder",
    "Fixture",
    "FixtureError",
    "check_fixture_messages",
    "check_unique_names",
    "fixture_document",
    "fixture_files",
    "fixture_from_dict",
    "fixture_from_text",
    "folder_files",
    "load_fixture_file",
    "load_fixtures",
    "matcher_of",
    "messages_item_pointer",
    "strict_json_loads",
]

FIXTURE_SUFFIXES = (".yaml", ".yml", ".json")
# Bounds on what one file may cost: real fixtures are far below each, and a hostile or broken
# file past one is refused with its line before it costs memory or time (the others: fixture_reader).
MAX_FIXTURE_BYTES = 10 * 1024 * 1024
PYTHON_SOURCE = "<python>"

TOP_KEYS = ("name", "description", "match", "conversation", "stream", "embeddings")
MATCH_KEYS = ("model", "ssml_enabled", "context", "tools", "modalities", "response_format")
STREAM_KEYS = ("ttft_ms", "tokens_per_second", "jitter")
MODALITIES = ("text", "audio")
# The response_format types a request can carry under the contract ("text" stands for none): a
# `json_object` match could never be met, since the contract refuses such a request.
RESPONSE_FORMAT_TYPES = ("text", "json_schema")

_CONTROL_CATEGORIES = ("Cc", "Zl", "Zp")  # C0, DEL, C1, and the Unicode line and paragraph separators


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
    embeddings: tuple[PinnedVector, ...] = ()  # vectors pinned to inputs (``POST /v1/embeddings``)

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


def fixture_document(text: str, source: Path) -> tuple[Any, dict[KeyPath, int]]:
    """A fixture file's text parsed as start-up parses it (YAML or JSON by the suffix), with each value's line."""
    label = str(source)
    return read_json(text, label) if source.suffix.lower() == ".json" else read_yaml(text, label)


def fixture_from_text(text: str, source: Path, root: str | Path | None = None) -> Fixture:
    """The fixture a file holding ``text`` (within MAX_FIXTURE_BYTES) at ``source`` loads as: what the recorder
    checks before it writes, so that no file it writes stops the next start-up."""
    label = str(source)
    data, lines = fixture_document(text, source)
    try:
        files = AudioFolder(source.parent, Path(root) if root is not None else source.parent)
        return _build(SourceLines(label, lines), data, source, default_name=source.stem, files=files)
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
            SourceLines(str(source), None).fail((), f"a fixture must be a mapping, got {value_kind(data)}")
        data["name"] = name
    default_name = source_path.stem if is_file else _content_name(data)
    base_dir = source_path.parent if is_file else Path.cwd()
    has_folder = str(source) == PYTHON_SOURCE or not _is_pseudo_source(str(source))
    files = AudioFolder(base_dir, base_dir if has_folder else None)
    return _build(SourceLines(str(source), None), data, source_path, default_name=default_name, files=files)


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


# -- building a fixture ------------------------------------------------------------------------------


def _build(reader: SourceLines, data: Any, source: Path, default_name: str, files: AudioFolder) -> Fixture:
    """The fixture ``data`` holds: its top level checked here, its conversation by :mod:`.fixture_parse`."""
    if not isinstance(data, dict):
        reader.fail((), f"a fixture must be a mapping with a 'conversation' list, got {value_kind(data)}")
    reader.check_keys(data, TOP_KEYS, (), "the fixture")
    _check_json_values(reader, data, ())
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
    match = _parse_match(reader, data.get("match"))
    pacing = _parse_stream(reader, data.get("stream"))
    json_content = match.get("response_format") == "json_schema"
    context = FixtureContext(reader.label, reader.lines, name=name, files=files, json_content=json_content)
    pins = parse_pins(reader, data["embeddings"], name) if "embeddings" in data else ()
    if pins and "conversation" not in data:  # a file of pinned vectors only
        for key in ("match", "stream"):
            if key in data:
                reader.fail(
                    (key,),
                    f"{key} applies to a conversation, and this fixture has none (an embedding names its own model)",
                )
        conversation = ParsedConversation([], {}, {}, {})
    else:
        conversation = parse_conversation(context, data)
    return Fixture(
        name=name,
        source=source,
        match=match,
        conversation=tuple(conversation.messages),
        turns=conversation.turns,
        pacing=pacing,
        line_of=conversation.line_of,
        name_line=reader.line(("name",)) if "name" in data else 0,
        scenarios=conversation.scenarios,
        embeddings=pins,
    )


def _check_json_values(reader: SourceLines, value: Any, path: KeyPath) -> None:
    """Refuse what a strict JSON parser would: NaN and infinities, and YAML-only values (sets, timestamps, bytes).

    The server sends fixture values as JSON; ``json.dumps`` writes ``NaN`` that clients then refuse, and
    fails outright on a set or a date, so each is named here with its line instead.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                reader.fail(path, f"a key {_yaml_kind(key)} is not JSON; write the key as a string")
            _check_json_values(reader, item, (*path, key))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            _check_json_values(reader, item, (*path, number))
    elif isinstance(value, float) and not math.isfinite(value):
        reader.fail(
            path, f"{render_path(path)} is {value!r}: NaN and Infinity are not JSON, and strict parsers refuse them"
        )
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        reader.fail(path, f"{render_path(path)} is {_yaml_kind(value)}, which is not JSON; write it as a string")


def _yaml_kind(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return "a set (!!set)"
    if isinstance(value, (bytes, bytearray)):
        return "binary data (!!binary)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a timestamp (!!timestamp)"
    return "a list used as a key" if isinstance(value, tuple) else f"a {type(value).__name__}"


def _parse_match(reader: SourceLines, raw: Any) -> dict[str, Any]:
    path: KeyPath = ("match",)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        reader.fail(path, f"match must be a mapping of conditions, got {value_kind(raw)}")
    reader.check_keys(raw, MATCH_KEYS, path, "match")
    match = copy.deepcopy(raw)
    if "model" in raw and (not isinstance(raw["model"], str) or not raw["model"]):
        reader.fail((*path, "model"), f"match.model must be a model name, got {short_json(raw['model'])}")
    if "ssml_enabled" in raw and not isinstance(raw["ssml_enabled"], bool):
        reader.fail(
            (*path, "ssml_enabled"), f"match.ssml_enabled must be true or false, got {short_json(raw['ssml_enabled'])}"
        )
    if "context" in raw and not isinstance(raw["context"], dict):
        reader.fail((*path, "context"), f"match.context must be a mapping, got {value_kind(raw['context'])}")
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


def _parse_stream(reader: SourceLines, raw: Any) -> Pacing:
    path: KeyPath = ("stream",)
    if raw is None:
        return Pacing()
    if not isinstance(raw, dict):
        reader.fail(path, f"stream must be a mapping (ttft_ms, tokens_per_second, jitter), got {value_kind(raw)}")
    reader.check_keys(raw, STREAM_KEYS, path, "stream")
    values: dict[str, float | None] = {}
    for key in STREAM_KEYS:
        value = raw.get(key)
        if value is not None and not is_finite_number(value):
            reader.fail((*path, key), f"stream.{key} must be a number, got {short_json(value)}")
        values[key] = None if value is None else float(value)
    try:
        return Pacing(**values)
    except PacingError as exc:  # the bounds are Pacing's own, the same as on the command line
        reader.fail((*path, exc.field), f"stream.{exc}")


def _content_name(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return f"python-{digest[:10]}"
