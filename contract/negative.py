"""Negative data: requests that break exactly one rule, so a server that accepts one is caught on that rule.

The rules come from the document, not from a list here: a valid request (realistic when the document
describes a chat completion, schema-driven otherwise) is walked beside its schema, and one of its
``required``, ``type`` or ``enum`` rules is broken at one place; or the bytes stop being JSON, the
content type is one the operation does not document, or a required body is left out.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .core import schemas
from .core.spec import Operation, Spec, pointer_join
from .core.validate import ContractValidator, json_type, short_json
from .strategies import declared_types, realistic_applies, realistic_requests, request_media, schema_requests


@dataclass(frozen=True)
class NegativeCase:
    """A request that breaks exactly one rule; ``body`` is None when the bytes are not JSON."""

    body: Any | None
    raw_body: bytes
    content_type: str
    broken_rule: str  # "<kind>: <where and what>", kind one of NEGATIVE_KINDS

    @property
    def kind(self) -> str:
        return self.broken_rule.split(":", 1)[0]


NEGATIVE_KINDS = (
    "missing-required",
    "wrong-type",
    "outside-enum",
    "malformed-json",
    "wrong-content-type",
    "empty-body",
)
SCHEMA_KINDS = NEGATIVE_KINDS[:3]
_OUTSIDE_WORDS = ("robot", "video", "sometimes", "unknown", "xml", "maybe")
_WRONG_VALUES: tuple[Any, ...] = ("not-a-number", 42, 1.5, True, ["x"], {"x": 1}, None)


@dataclass(frozen=True)
class Mutation:
    """One rule of the schema, and how to break it at one place of an instance."""

    kind: str
    path: tuple[str | int, ...]
    describe: str
    apply: Callable[[Any], Any]

    @property
    def pointer(self) -> str:
        return pointer_join("", *self.path) or "/"


def mutation_sites(schema: Any, instance: Any) -> list[Mutation]:
    """Every single-rule break the schema allows at a place ``instance`` actually has.

    Walks the (inlined) schema beside the instance: ``required`` lists give
    missing-property breaks, ``type`` gives wrong-type breaks, ``enum`` gives
    outside-enum breaks. At ``oneOf`` / ``anyOf`` it follows the branches the
    instance matches, so the rules come from the document, not from a list here.
    """
    return list(_dedupe(_walk(schema, instance, ())))


def _walk(schema: Any, instance: Any, path: tuple[str | int, ...], branch: bool = False) -> Iterator[Mutation]:
    """``branch``: ``schema`` is one branch of a combinator whose admitted types were already used."""
    if not isinstance(schema, dict):
        return
    kinds = _allowed_types(schema)
    wrong = [value for value in _WRONG_VALUES if not _type_allows(kinds, value)] if kinds and not branch else []
    if wrong:
        value = wrong[0]
        yield Mutation(
            "wrong-type",
            path,
            f"{json_type(instance)} replaced by {json_type(value)} "
            f"{short_json(value)} (allowed: {', '.join(sorted(kinds))})",
            _setter(path, value),
        )
    if isinstance(schema.get("enum"), list) and all(isinstance(v, str) for v in schema["enum"]):
        word = next(w for w in _OUTSIDE_WORDS if w not in schema["enum"])
        yield Mutation(
            "outside-enum", path, f"{short_json(word)} is not one of {short_json(schema['enum'])}", _setter(path, word)
        )
    for sub in schema.get("allOf", []) or []:
        yield from _walk(sub, instance, path, branch)
    for keyword in ("oneOf", "anyOf"):
        for sub in schema.get(keyword, []) or []:
            if isinstance(sub, dict) and schemas.is_valid(sub, instance):
                yield from _walk(sub, instance, path, branch=True)
    if isinstance(instance, dict):
        for name in schema.get("required", []) or []:
            if name in instance:
                yield Mutation("missing-required", path, f"required property {name!r} removed", _remover((*path, name)))
        for name, sub in (schema.get("properties") or {}).items():
            if name in instance:
                yield from _walk(sub, instance[name], (*path, name))
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            yield from _walk(schema["items"], item, (*path, index))


def _dedupe(mutations: Iterator[Mutation]) -> Iterator[Mutation]:
    seen: set[tuple[str, tuple[str | int, ...], str]] = set()
    for mutation in mutations:
        key = (mutation.kind, mutation.path, mutation.describe)
        if key not in seen:
            seen.add(key)
            yield mutation


def _allowed_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits, when it says (through ``type`` or its branches)."""
    kinds = declared_types(schema)
    if kinds:
        return kinds
    if isinstance(schema.get("enum"), list):
        return {json_type(v) for v in schema["enum"]}
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list) and branches:
            union: set[str] = set()
            for branch in branches:
                sub = _allowed_types(branch) if isinstance(branch, dict) else set()
                if not sub:
                    return set()  # a branch that admits any type: no wrong type exists
                union |= sub
            return union
    return set()


def _type_allows(kinds: set[str], value: Any) -> bool:
    seen = json_type(value)
    return seen in kinds or (seen == "integer" and "number" in kinds)


def _setter(path: tuple[str | int, ...], value: Any) -> Callable[[Any], Any]:
    def apply(instance: Any) -> Any:
        if not path:
            return copy.deepcopy(value)
        out = copy.deepcopy(instance)
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = copy.deepcopy(value)
        return out

    return apply


def _remover(path: tuple[str | int, ...]) -> Callable[[Any], Any]:
    def apply(instance: Any) -> Any:
        out = copy.deepcopy(instance)
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
        return out

    return apply


_MALFORMATIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda raw: raw[:-1],
    "trailing-comma": lambda raw: raw[:-1] + b",}" if raw.endswith(b"}") else raw + b",",
    "single-quoted": lambda raw: raw.replace(b'"', b"'", 2),
    "trailing-garbage": lambda raw: raw + b"}",
}


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def negative_requests(spec: Spec, operation: Operation | None = None) -> st.SearchStrategy[NegativeCase]:
    """Requests that break exactly one rule: of the schema, of JSON, of the content type, or of presence."""
    operation = operation or spec.operation()
    media = request_media(operation)
    validator = ContractValidator(spec)
    inlined = spec.inline(media.schema)
    base = (
        realistic_requests(spec, operation) if realistic_applies(spec, operation) else schema_requests(spec, operation)
    )
    documented = {name.split(";", 1)[0].strip().lower() for name in operation.request_body}
    wrong_types = [t for t in ("text/plain", "application/x-www-form-urlencoded") if t not in documented]

    @st.composite
    def cases(draw: st.DrawFn) -> NegativeCase:
        body = draw(base)
        raw = _encode(body)
        choice = draw(st.sampled_from(range(10)))  # 0-6 a schema rule, then JSON, content type, presence
        if choice <= 6:
            # Draw the kind of break first, then the place, so each kind is as likely whatever
            # the number of places; a break the validator still accepts is set aside.
            sites_here = mutation_sites(inlined, body)
            by_kind = {kind: [m for m in sites_here if m.kind == kind] for kind in SCHEMA_KINDS}
            while any(by_kind.values()):
                sites = by_kind[draw(st.sampled_from([kind for kind in SCHEMA_KINDS if by_kind[kind]]))]
                mutation = sites.pop(draw(st.sampled_from(range(len(sites)))))
                broken = mutation.apply(body)
                if not validator.is_valid_at(media.pointer, broken):
                    return NegativeCase(
                        broken,
                        _encode(broken),
                        media.media_type,
                        f"{mutation.kind}: {mutation.pointer}: {mutation.describe}",
                    )
        if choice == 8 and wrong_types:
            content_type = draw(st.sampled_from(wrong_types))
            return NegativeCase(
                body, raw, content_type, f"wrong-content-type: {content_type} is not a documented request media type"
            )
        if choice == 9 and operation.request_body_required:
            return NegativeCase(None, b"", media.media_type, "empty-body: the request body is required")
        how = draw(st.sampled_from(tuple(_MALFORMATIONS)))
        broken_bytes = _MALFORMATIONS[how](raw)
        if _parses(broken_bytes):  # e.g. "12" cut to "1": fall back to trailing garbage
            how, broken_bytes = "trailing-garbage", raw + b"}"
        return NegativeCase(None, broken_bytes, media.media_type, f"malformed-json: {how}")

    return cases()
