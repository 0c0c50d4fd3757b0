"""Rule undocumented-refusal: schema-valid request bodies a server refuses, unlisted by the document.

:mod:`.refusals` asks the refusers and reads the document's ``x-refusals``; this module
chooses the bodies to ask about: the hand-built :func:`~.witnesses.request_instances`
first, then rounds of a seeded search, each for a refusal the earlier ones did not find,
keeping the smallest refused body of each (code, param) as the witness.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache, partial
from typing import Any

from ..core import pointers
from ..core.spec import MediaSchema, Operation
from ..core.validate import JSON, pick_media
from .document import LintContext
from .findings import Finding, compact_json
from .refusals import RefusalKey, RefusalProbe, Refused, RefuserFailure, documented_refusals
from .witnesses import request_instances, request_strategy, search_strategy

SEARCH_REQUESTS = 20  # request bodies drawn per search for refusals, after the hand-built ones
SEARCH_ROUNDS = 4  # searches per operation: each looks for a refusal the earlier ones did not find


def rule_undocumented_refusal(ctx: LintContext) -> Iterator[Finding]:
    """A schema-valid request that a server refuses for a reason the document does not list.

    Warning: the document is not wrong, only silent, but whoever trusts it sees "valid request
    refused". Reported at the operation's 400 response, where ``x-refusals`` belongs (or at the
    request body schema when there is no 400), once per (code, param) with the smallest witness.
    """
    if not ctx.refusers:
        return
    reported: set[tuple[str, RefusalKey]] = set()
    for op in ctx.spec.operations:
        media = pick_media(op.request_body, JSON)
        schema = ctx.plain(media.schema) if media is not None else None
        if media is None or schema is None:
            continue
        bad_request = next(
            (
                (pointer, response)
                for status, pointer, response in ctx.responses(pointers.lookup(ctx.raw, op.pointer), op.pointer)
                if status == "400"
            ),
            None,
        )
        location = bad_request[0] if bad_request else media.pointer
        probe = RefusalProbe(ctx.refusers, documented_refusals(bad_request[1]) if bad_request else set())

        def valid(body: Any, op: Operation = op, media: MediaSchema = media) -> bool:
            return (
                isinstance(body, dict)
                and ctx.validator.validate_request(body, op.path, op.method, media.media_type) == []
            )

        found, failures = _asked(schema, valid, probe)
        for key in sorted(found, key=lambda k: (str(k[0]), str(k[1]))):
            if (location, key) not in reported:
                reported.add((location, key))
                refused, body = found[key]
                yield Finding(
                    "warning",
                    "undocumented-refusal",
                    location,
                    _refusal_message(refused, bad_request is not None),
                    body,
                )
        for failure in failures:
            yield Finding(
                "warning",
                "undocumented-refusal",
                location,
                f"refuser {failure.refuser!r} failed on the witness ({failure.reason}); its refusals were not checked",
                failure.body,
            )


_Found = dict[RefusalKey, tuple[Refused, Any]]
# What the refusers said about each request schema, kept for the process: the runner and the pytest
# plugin lint the same document on every run, and the answer is the same each time (a seeded search).
_ASKED: dict[Any, tuple[_Found, list[RefuserFailure]]] = {}
_ASKED_MAX = 32


def _asked(schema: Any, valid: Callable[[Any], bool], probe: RefusalProbe) -> tuple[_Found, list[RefuserFailure]]:
    """:func:`_refusals` and the refusers' failures, from the cache when the same refusers were
    asked about the same schema with the same documented refusals."""
    key = (json.dumps(schema, sort_keys=True), frozenset(probe.documented), tuple(probe.refusers.items()))
    try:
        cached = _ASKED.get(key)
    except TypeError:  # a refuser that cannot be hashed: ask every time
        return _refusals(schema, valid, probe), probe.failures
    if cached is None:
        if len(_ASKED) >= _ASKED_MAX:
            _ASKED.clear()
        cached = _ASKED[key] = (_refusals(schema, valid, probe), list(probe.failures))
    return cached


def _refusals(schema: Any, valid: Callable[[Any], bool], probe: RefusalProbe) -> _Found:
    """Undocumented refusals of valid request bodies, each with the smallest body found: the
    hand-built bodies first, then rounds of the seeded search, each for a refusal not yet found."""
    found: _Found = {}
    for body in request_instances(schema):
        refused = probe.undocumented(body) if valid(body) else None
        if refused is not None and (refused.key not in found or _size(body) < _size(found[refused.key][1])):
            found[refused.key] = (refused, body)
    strategy = cache(partial(request_strategy, schema))
    for _ in range(SEARCH_ROUNDS):
        hits = search_strategy(
            strategy, lambda body: valid(body) and probe.undocumented(body, skip=found) is not None, SEARCH_REQUESTS
        )
        refused = probe.undocumented(hits[0], skip=found) if hits else None
        if refused is None:
            break
        found[refused.key] = (refused, hits[0])
    return found


def _size(value: Any) -> tuple[int, str]:
    text = compact_json(value)
    return len(text), text


def _refusal_message(refused: Refused, has_bad_request: bool) -> str:
    where = (
        "add it to this response's x-refusals"
        if has_bad_request
        else "document a 400 response that lists it in x-refusals"
    )
    return (
        f"{refused.refuser} refuses the schema-valid witness with code {refused.code!r}, "
        f"param {refused.param!r} ({refused.message}), but the document does not say so; {where}"
    )
