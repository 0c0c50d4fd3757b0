"""Read a fixture file's text into Python values, and know each value's line.

Users write fixtures by hand, so a mistake must be named as ``file:line: what is wrong``. Python values
carry no lines, so the file is first composed into YAML nodes (a JSON file too: JSON is nearly YAML),
whose marks give each key path its line; :class:`SourceLines` turns a key path back into ``file:line``.
Composing is also where a hostile file is stopped: aliases that expand without bound, nesting deeper
than the parsers recurse, integers of thousands of digits.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

# Bounds on what one file may cost (with the loader's MAX_FIXTURE_BYTES): real fixtures are far below
# each, and a hostile or broken file past one is refused with its line before it costs memory or time.
MAX_DEPTH = 100  # nesting of mappings and lists (YAML's composer and Python's json recurse)
MAX_ALIAS_NODES = 10_000  # nodes that YAML aliases (*name) add when expanded, over the whole file
MAX_INT_DIGITS = 100  # a count or a number in a fixture needs far fewer; Python refuses past 4300

KeyPath = tuple[Any, ...]  # a key path inside the fixture: ("conversation", 2, "tool_calls")


class FixtureError(Exception):
    """A fixture cannot be used; the message is ``file:line: what is wrong``."""


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


def read_yaml(text: str, label: str) -> tuple[Any, dict[KeyPath, int]]:
    """A YAML fixture's value, and the line of each key path in it; ``label`` names the file in errors."""
    try:
        loader = _FixtureLoader(text, label)
    except yaml.reader.ReaderError as exc:  # the Python reader refuses NUL and other control characters at once
        raise FixtureError(f"{label}:{_reader_line(text, exc)}: {_reader_problem(exc)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise FixtureError(f"{label}:1: the file is empty; a fixture needs a 'conversation' list")
        lines: dict[KeyPath, int] = {}
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


def read_json(text: str, label: str) -> tuple[Any, dict[KeyPath, int]]:
    """A JSON fixture's value, and the line of each key path in it (none known if YAML cannot compose it)."""
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
    lines: dict[KeyPath, int] = {}
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


def _record_lines(node: Node, path: KeyPath, lines: dict[KeyPath, int], label: str, ancestors: set[int]) -> None:
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


@dataclass(frozen=True)
class SourceLines:
    """Where things are in one fixture source, and how to say what is wrong there."""

    label: str
    lines: dict[KeyPath, int] | None  # None: built from Python, no lines

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, or of the nearest key above it that has one; 0 when no lines are known."""
        if self.lines is None:
            return 0
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def where(self, path: KeyPath) -> str:
        """``file:line`` of ``path``; ``source: key.path`` when no lines are known."""
        if self.lines is None:
            return f"{self.label}: {render_path(path)}" if path else self.label
        return f"{self.label}:{self.line(path)}"

    def fail(self, path: KeyPath, message: str) -> NoReturn:
        """Raise :class:`FixtureError` saying ``message`` at ``path``."""
        raise FixtureError(f"{self.where(path)}: {message}")

    def check_keys(self, mapping: dict[Any, Any], known: Iterable[str], path: KeyPath, what: str) -> None:
        """Refuse a key of ``mapping`` (at ``path``, a ``what``) that is not ``known``, with the closest known one."""
        known = tuple(known)
        for key in mapping:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
                self.fail((*path, key), f"unknown key {key!r} in {what}{hint}")


def render_path(path: KeyPath) -> str:
    """``conversation[2].tool_calls``: a key path as a user reads it, where no line is known."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out
