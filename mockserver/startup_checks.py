"""The start-up checks: a fixture is served only if every message and every reply, as sent, meets the contract.

``mockserver --fixtures DIR`` refuses a folder with one bad file, with the
file and line; the same checks run on a conversation posted to the admin API,
on each file ``--watch`` reloads, and on each file the recorder writes, so
whatever is served or written could have been loaded at start-up. A long
reply is checked in a condensed form that renders every kind of chunk the
full one does, so that a folder of large replies still starts in moments.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contract.core.validate import ContractValidator

from . import faults as fault_plans
from .fixtures import Fixture, FixtureError, check_fixture_messages, load_fixtures
from .request_rules import shape_for_modalities
from .stream import (
    DEFAULT_MODEL,
    Chunk,
    ReplyIdentity,
    compute_usage,
    render_chunks,
    render_completion,
    usage_override_problem,
)
from .turns import AssistantTurn


def check_fixture(fixture: Fixture, validator: ContractValidator, seed: int = 0) -> None:
    """Raise FixtureError unless every message and every reply, as it would be sent, meets the contract."""
    check_fixture_messages(fixture, validator)
    for index, turn in fixture.replies():
        where = turn.source or fixture.source
        body = representative_request(fixture, index, turn)
        problem = usage_override_problem(turn.usage)
        if problem:
            raise FixtureError(f"{where}: {problem}")
        plan = None
        if turn.fault is not None:
            try:
                plan = fault_plans.parse_fault(turn.fault)
            except ValueError as exc:
                raise FixtureError(f"{where}: {exc}") from None
        shaped = shape_for_modalities(turn, body, seed)
        identity = ReplyIdentity.new(random.Random(seed), body["model"], int(time.time()))
        usage = compute_usage(body["messages"], shaped)
        errors = validator.validate_response(200, render_completion(shaped, identity, usage))
        # A fault plan may look at every chunk; without one, a long reply is checked in its condensed
        # form, which renders every kind of chunk the full one does (see representative_chunks).
        chunks = render_chunks(shaped if plan is not None else condensed(shaped), identity, usage)
        for chunk in representative_chunks(chunks):
            errors = errors or validator.validate_event(chunk.data)
        if errors:
            raise FixtureError(f"{where}: the reply would break the contract: {errors[0]}")
        if plan is not None:
            problem = fault_plans.fault_problem(plan, [chunk.encode() for chunk in chunks])
            if problem:
                raise FixtureError(f"{where}: {problem}")


CONDENSE_AT = 4096  # characters: a longer text is checked as its first and last CONDENSE_AT // 2


def condensed(turn: AssistantTurn) -> AssistantTurn:
    """``turn`` with each long text cut to its head and tail: the same kinds of chunk, far fewer of them.

    Rendering a 1 MB reply makes 300,000 chunks, seconds of start-up spent on pieces that differ only
    in their words; the cut keeps the first and last pieces and the boundary between kinds of delta.
    """

    def cut(text: str | None) -> str | None:
        if text is None or len(text) <= CONDENSE_AT:
            return text
        return text[: CONDENSE_AT // 2] + text[-(CONDENSE_AT // 2) :]

    calls = tuple(
        {**call, "function": {**call["function"], "arguments": cut(call["function"]["arguments"])}}
        if isinstance(call.get("function"), dict) and isinstance(call["function"].get("arguments"), str)
        else call
        for call in turn.tool_calls
    )
    return dataclasses.replace(turn, content=cut(turn.content), refusal=cut(turn.refusal), tool_calls=calls)


def representative_chunks(chunks: Sequence[Chunk]) -> list[Chunk]:
    """The chunks that stand for all of a reply: the first and last two, and the first of each shape.

    Chunks of one shape differ only in the text of their strings (one content piece, then the next),
    and the contract says nothing about that text chunk by chunk, so validating one of each shape
    keeps the start-up guarantee (a reply that would break the contract fails here) while a 1 MB
    reply of 300,000 chunks costs a few validations instead of 300,000. The shape keeps every key,
    every non-string value and whether a string is empty, so an index, a null or a finish reason
    that differs is a shape of its own.
    """
    picked: dict[Any, Chunk] = {}
    for position, chunk in enumerate(chunks):
        key = ("edge", position) if position == 0 or position >= len(chunks) - 2 else _shape(chunk.data)
        picked.setdefault(key, chunk)
    return list(picked.values())


def _shape(data: Any) -> Any:
    """What a chunk is made of, ignoring the text of its strings; cheap for the common text delta."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], dict) and len(data) == 6:
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict) and all(type(text) is str and text for text in delta.values()) and len(choice) == 4:
            return (
                "text",
                tuple(delta),
                choice.get("index"),
                choice.get("logprobs"),
                choice.get("finish_reason"),
                tuple(data),
                type(data.get("usage")),
            )
    return _deep_shape(data)


def _deep_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((key, _deep_shape(item)) for key, item in value.items())
    if isinstance(value, list):
        return tuple(_deep_shape(item) for item in value)
    if isinstance(value, str):
        return str if value else ""
    return (type(value), value)


def representative_request(fixture: Fixture, index: int, turn: AssistantTurn) -> dict[str, Any]:
    """The request that plays turn ``index``: the messages before it and the fixture's model."""
    match = fixture.match if isinstance(fixture.match, dict) else {}
    model = match.get("model") if isinstance(match.get("model"), str) else DEFAULT_MODEL
    body: dict[str, Any] = {"model": model, "messages": list(fixture.conversation[:index])}
    if turn.audio is not None:
        body["modalities"] = ["text", "audio"]
    return body


def load_checked_fixtures(folder: Path, validator: ContractValidator, seed: int) -> list[Fixture]:
    fixtures = load_fixtures(folder)
    for fixture in fixtures:
        check_fixture(fixture, validator, seed)
    return fixtures
