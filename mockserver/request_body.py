"""Read a request body as JSON, refusing what would hurt the server later on.

``json.loads`` takes things no well-behaved client sends and the rest of the
server cannot handle: nesting deep enough to exhaust the stack, integers of
thousands of digits (Python refuses to print them), ``NaN`` and ``1e999999``
(no JSON encoder writes them back), unpaired surrogates (no UTF-8 encoder
writes them back). Each is refused here, with the contract's 400 and a reason,
so no later step (validation, matching, the journal, the reply) meets it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from contract.core import fastjson

from .strict_json import NonFiniteNumber, strict_json_loads

MAX_DEPTH = 64  # objects and arrays; a chat request needs a handful, a tool's schema a few more
MAX_INTEGER_DIGITS = 64
JOURNAL_BODY_BYTES = 16_384  # a journal entry keeps a body up to this size, and a summary of larger ones


class BodyProblem(ValueError):
    """The body cannot be served; the message is one line for the Error body."""


def parse_request_json(raw: bytes) -> Any:
    """The body as JSON, or :class:`BodyProblem` saying what is wrong with it."""
    value = _fast_parse(raw)
    if value is _UNPARSED:
        value = _careful_parse(raw)
    if _may_be_deep(raw) or _may_hold_surrogates(raw):
        _check_values(value)
    return value


_UNPARSED = object()
_LONG_DIGIT_RUN = re.compile(rb"\d{19}")  # an integer orjson would turn into a float, or refuse


def _fast_parse(raw: bytes) -> Any:
    """orjson's parse of a body it reads exactly as the standard library does, else ``_UNPARSED``.

    orjson refuses what this module refuses (NaN, infinite numbers, invalid UTF-8, lone surrogates)
    but words it its own way, and reads integers beyond 64 bits as floats; those bodies are left to
    :func:`_careful_parse`, which says what is wrong in this module's words.
    """
    if fastjson.orjson is None or _LONG_DIGIT_RUN.search(raw):
        return _UNPARSED
    try:
        return fastjson.orjson.loads(raw)
    except fastjson.orjson.JSONDecodeError:
        return _UNPARSED


def _careful_parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyProblem(f"the body is not UTF-8: byte {exc.start} is {raw[exc.start : exc.start + 1]!r}") from None
    try:
        value = strict_json_loads(text, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise BodyProblem(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except NonFiniteNumber as exc:
        if exc.constant:
            raise BodyProblem(f"the body has {exc.text}, which is not JSON") from None
        raise BodyProblem(f"the body has the number {exc.text[:40]}, which is out of range for JSON") from None
    except RecursionError:
        raise BodyProblem(f"the body nests JSON deeper than {MAX_DEPTH} levels") from None
    return value


def _may_be_deep(raw: bytes) -> bool:
    """Whether the body has enough brackets to nest past MAX_DEPTH; counted in C, unlike a walk of the value."""
    return raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _may_hold_surrogates(raw: bytes) -> bool:
    """Whether a string may hold a surrogate: UTF-8 cannot encode one, so only a ``\\uD800``-style escape can."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def journal_body(body: Any, size: int) -> Any:
    """What the journal keeps of a body: itself, or for a large one its size and its start."""
    if size <= JOURNAL_BODY_BYTES:
        return body
    head = json.dumps(body, ensure_ascii=False)[:2000]
    return {"truncated": True, "bytes": size, "head": head}


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise BodyProblem(f"the body has an integer of {digits} digits; at most {MAX_INTEGER_DIGITS} are taken")
    return int(text)


def _check_values(value: Any) -> None:
    """Depth and strings, without recursion: nesting past MAX_DEPTH, and unpaired surrogates."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, str):
            _check_text(node, where)
        elif isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                shown = where if len(where) <= 60 else where[:59] + "…"
                raise BodyProblem(f"the body nests JSON deeper than {MAX_DEPTH} levels (at {shown})")
            if isinstance(node, dict):
                for key, item in node.items():
                    _check_text(key, where)
                    stack.append((item, depth + 1, f"{where}/{key}"))
            else:
                stack.extend((item, depth + 1, f"{where}/{index}") for index, item in enumerate(node))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BodyProblem(
            f"the body has an unpaired surrogate \\u{ord(text[exc.start]):04x} at {where or '/'}; "
            "it is not Unicode text"
        ) from None
