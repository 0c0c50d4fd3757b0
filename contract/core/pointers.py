"""JSON pointers and ``$ref`` chains: the one place that reads, writes and follows them.

A pointer is written as the document's fragment (``#/components/schemas/Chat``) or as an instance path
(``/messages/0/content``); both spell their tokens with ``~1`` for ``/`` and ``~0`` for ``~``
(RFC 6901). The loader, the lint, the checks and the mock all walk documents and instances by
pointer, and the lint and the loader both follow chains of Reference Objects; each did it its own
way before, with small differences in escaping and in what stopped a chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def join(base: str, *tokens: Any) -> str:
    """``base`` with each token appended, escaped: ``join("#/paths", "/chat")`` is ``#/paths/~1chat``."""
    return base + "".join("/" + escape(str(token)) for token in tokens)


def tokens(pointer: str) -> list[str]:
    """The unescaped tokens of ``#/a/b`` or ``/a/b``; the empty pointer (the whole value) has none."""
    path = pointer[1:] if pointer.startswith("#") else pointer
    return [unescape(token) for token in path.split("/")[1:]] if path else []


def lookup(document: Any, pointer: str) -> Any:
    """The value at ``pointer`` inside ``document``; LookupError when there is none."""
    node = document
    for token in tokens(pointer):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise LookupError(pointer)
    return node


def value_at(instance: Any, pointer: str) -> Any:
    """The value at ``pointer`` inside ``instance``, or None when there is none."""
    try:
        return lookup(instance, pointer)
    except LookupError:
        return None


def follow_refs(
    node: Any, pointer: str, resolve: Callable[[str], Any], on_cycle: Callable[[str], Any] | None = None
) -> tuple[Any, str]:
    """Follow a chain of in-document ``$ref``s from ``node`` (found at ``pointer``) to the node it ends at.

    ``resolve`` gives the node a target points at; when it raises LookupError the chain ends at the
    reference that names the target (any other exception goes to the caller). A chain that comes back
    to a target it passed calls ``on_cycle`` with that target (which may raise), or stops there.
    A ``$ref`` outside the document ends the chain: the caller decides whether that is an error.
    """
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        target = node["$ref"]
        if target in seen:
            if on_cycle is not None:
                on_cycle(target)
            break
        seen.add(target)
        try:
            node, pointer = resolve(target), target
        except LookupError:
            break
    return node, pointer
