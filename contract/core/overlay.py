"""Apply an OpenAPI Overlay 1.0 document: ordered actions, each a JSONPath target with ``update`` or ``remove``.

Profiles (``contract.core.profiles``) and a user's own ``--overlay FILE`` change the contract this way, so
one mechanism describes every dialect and each change stays a readable line of YAML. Targets are
RFC 9535 JSONPath queries, evaluated by ``jsonpath-rfc9535`` rather than a walker of our own.

The rules, from the Overlay specification: actions apply in order, each to the document as the
actions before it left it; ``update`` on an object merges recursively (objects into objects, any
other value replaced), ``update`` on an array appends its value; ``remove: true`` deletes the
selected nodes. A target that selects nothing is refused: in an overlay written for one document it
is always a typo, and silently changing nothing is the error a user would otherwise hunt for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jsonpath_rfc9535

_OVERLAY_KEYS = ("overlay", "info", "extends", "actions")
_ACTION_KEYS = ("target", "description", "update", "remove")


class OverlayError(Exception):
    """The overlay cannot be applied; one line that says which action and why."""


@dataclass(frozen=True)
class Action:
    target: str
    update: Any = None
    remove: bool = False
    has_update: bool = False
    description: str = ""


@dataclass(frozen=True)
class Overlay:
    """A checked overlay document: its title, for reports, and its actions in order."""

    source: str
    title: str
    actions: tuple[Action, ...]


def parse_overlay(data: Any, source: str) -> Overlay:
    """Check the document's structure (Overlay 1.0.x) and compile nothing yet; OverlayError when it is not one."""
    if not isinstance(data, dict):
        raise OverlayError(f"{source}: not an overlay (the top level is not a mapping)")
    version = data.get("overlay")
    if not isinstance(version, str) or not version.startswith("1.0"):
        raise OverlayError(f"{source}: not an Overlay 1.0 document (expected 'overlay: 1.0.0', got {version!r})")
    unknown = [key for key in data if key not in _OVERLAY_KEYS and not str(key).startswith("x-")]
    if unknown:
        raise OverlayError(f"{source}: unknown top-level key {unknown[0]!r} (expected {', '.join(_OVERLAY_KEYS)})")
    info = data.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("title"), str):
        raise OverlayError(f"{source}: 'info' must be a mapping with a 'title' and a 'version'")
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        raise OverlayError(f"{source}: 'actions' must be a non-empty list")
    return Overlay(source, info["title"], tuple(_action(raw, source, n) for n, raw in enumerate(actions, 1)))


def _action(raw: Any, source: str, number: int) -> Action:
    where = f"{source}: action {number}"
    if not isinstance(raw, dict):
        raise OverlayError(f"{where}: an action must be a mapping with 'target' and 'update' or 'remove'")
    unknown = [key for key in raw if key not in _ACTION_KEYS and not str(key).startswith("x-")]
    if unknown:
        raise OverlayError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(_ACTION_KEYS)})")
    target = raw.get("target")
    if not isinstance(target, str) or not target.startswith("$"):
        raise OverlayError(f"{where}: 'target' must be a JSONPath query starting with '$', got {target!r}")
    try:
        jsonpath_rfc9535.compile(target)
    except jsonpath_rfc9535.JSONPathError as exc:
        raise OverlayError(f"{where}: target {target!r} is not valid JSONPath: {exc}") from None
    remove = raw.get("remove", False)
    if not isinstance(remove, bool):
        raise OverlayError(f"{where}: 'remove' must be true or false, got {remove!r}")
    has_update = "update" in raw
    if remove == has_update:
        raise OverlayError(f"{where}: give exactly one of 'update' and 'remove: true'")
    description = raw.get("description", "")
    return Action(target, raw.get("update"), remove, has_update, description if isinstance(description, str) else "")


def apply_overlay(document: dict[str, Any], overlay: Overlay) -> dict[str, Any]:
    """A copy of ``document`` with every action of ``overlay`` applied in order."""
    result = copy.deepcopy(document)
    for number, action in enumerate(overlay.actions, 1):
        where = f"{overlay.source}: action {number} ({action.target})"
        try:
            nodes = jsonpath_rfc9535.find(action.target, result)
        except jsonpath_rfc9535.JSONPathError as exc:
            raise OverlayError(f"{where}: {exc}") from None
        if not nodes:
            raise OverlayError(f"{where}: the target selects nothing in the document")
        if action.remove:
            # Deepest and last first, so removing one node does not shift the index of another.
            for node in sorted(nodes, key=lambda n: _sort_key(n.location), reverse=True):
                if not node.location:
                    raise OverlayError(f"{where}: the document's root cannot be removed")
                parent = _at(result, node.location[:-1])
                del parent[node.location[-1]]
            continue
        for node in nodes:
            if not node.location:
                if not isinstance(action.update, dict):
                    raise OverlayError(f"{where}: an update of the root must be a mapping")
                _merge(result, action.update)
                continue
            parent = _at(result, node.location[:-1])
            key = node.location[-1]
            current = parent[key]
            if isinstance(current, list):
                current.append(copy.deepcopy(action.update))
            elif isinstance(current, dict) and isinstance(action.update, dict):
                _merge(current, action.update)
            elif isinstance(current, dict):
                raise OverlayError(f"{where}: the target is a mapping, so 'update' must be one too")
            else:
                parent[key] = copy.deepcopy(action.update)
    return result


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _at(document: Any, location: tuple[Any, ...]) -> Any:
    node = document
    for key in location:
        node = node[key]
    return node


def _sort_key(location: tuple[Any, ...]) -> tuple[Any, ...]:
    return (len(location), tuple((0, k) if isinstance(k, int) else (1, str(k)) for k in location))
