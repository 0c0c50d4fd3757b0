"""A reply's bytes, rendered once per turn and finished per request with only what changes.

Every request a turn answers gets the same pieces, the same chunk boundaries and
the same message; only the reply's ``id``, ``created``, ``model`` and ``usage``
differ. So the first request renders each chunk's JSON from ``choices`` onwards
once and keeps it on the turn, and each request after that writes its own
identity in front and its usage at the end: a few byte joins instead of
tokenizing, building and encoding every chunk again. The bytes are exactly those
:func:`mockserver.stream.render_chunks` and :func:`render_completion` give (a test
compares them), so the start-up checks, which validate those, still vouch for
what is sent.

Turns with audio are rendered whole per request: their chunks carry the audio id
and expiry, which follow the reply's identity. So are replies of several choices
(``n``), which are rare and differ per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from contract.core import fastjson

from .stream import Chunk, ReplyIdentity, render_choices, render_chunks, render_completion
from .turns import AssistantTurn

_PLACEHOLDER = ReplyIdentity(id="", created=0, model="")
_CHUNK_OBJECT = b',"object":"chat.completion.chunk","created":'
_COMPLETION_OBJECT = b',"object":"chat.completion","created":'
encode_json = fastjson.dumps  # compact UTF-8, as Chunk.encode writes each chunk


@dataclass(frozen=True)
class PreparedTurn:
    """One turn's rendering without the identity: what every request it answers shares."""

    chunk_tails: tuple[bytes, ...]  # each choice chunk from ``,"choices":`` to the end of its event
    paced: tuple[bool, ...]  # per chunk, the usage chunk included: whether it waits its turn
    choices: bytes  # the non-streamed reply's ``choices`` value


def prepared(turn: AssistantTurn) -> PreparedTurn:
    """The turn's shared rendering, made on the first request and kept on the turn."""
    cached = turn.rendered.get("prepared")
    if cached is None:
        cached = turn.rendered["prepared"] = _prepare(turn)
    return cast(PreparedTurn, cached)


def _prepare(turn: AssistantTurn) -> PreparedTurn:
    chunks = render_chunks(turn, _PLACEHOLDER, {})
    tails = tuple(b',"choices":' + encode_json(chunk.data["choices"]) + b',"usage":null}\n\n' for chunk in chunks[:-1])
    completion = render_completion(turn, _PLACEHOLDER, {})
    return PreparedTurn(
        chunk_tails=tails, paced=tuple(chunk.paced for chunk in chunks), choices=encode_json(completion["choices"])
    )


class ReplyBytes:
    """One request's reply as bytes: the stream's events (without ``[DONE]``) or the JSON body.

    Nothing is rendered until asked for, so a JSON reply never renders the stream and a stream never
    renders the JSON body. ``usage_chunk`` False leaves the stream's usage chunk out (a client of the
    ``openai`` profile that did not ask for it); ``more_choices`` are the turns of choices 1, 2...
    """

    def __init__(
        self,
        turn: AssistantTurn,
        identity: ReplyIdentity,
        usage: dict[str, Any],
        *,
        usage_chunk: bool = True,
        more_choices: tuple[AssistantTurn, ...] = (),
    ) -> None:
        self.turn, self.identity, self.usage = turn, identity, usage
        self.usage_chunk, self.more_choices = usage_chunk, more_choices
        self._rendered_whole = turn.audio is not None or bool(more_choices)

    @cached_property
    def _identity_json(self) -> tuple[bytes, bytes]:
        """``"id":...`` and ``created,"model":...``: the two sides of the object name, encoded once."""
        head = b'{"id":' + encode_json(self.identity.id)
        return head, str(self.identity.created).encode() + b',"model":' + encode_json(self.identity.model)

    @cached_property
    def _whole(self) -> tuple[list[Chunk], dict[str, Any]]:
        if self.more_choices:
            return render_choices((self.turn, *self.more_choices), self.identity, self.usage)
        return render_chunks(self.turn, self.identity, self.usage), {}

    @cached_property
    def events(self) -> list[bytes]:
        if self._rendered_whole:
            events = [chunk.encode() for chunk in self._whole[0]]
            return events if self.usage_chunk else events[:-1]
        head, rest = self._identity_json
        start = b"data: " + head + _CHUNK_OBJECT + rest
        events = [start + tail for tail in prepared(self.turn).chunk_tails]
        if self.usage_chunk:
            events.append(start + b',"choices":[],"usage":' + encode_json(self.usage) + b"}\n\n")
        return events

    @cached_property
    def paced(self) -> tuple[bool, ...]:
        paced = tuple(chunk.paced for chunk in self._whole[0]) if self._rendered_whole else prepared(self.turn).paced
        return paced if self.usage_chunk else paced[:-1]

    def completion(self) -> bytes:
        if self.more_choices:
            return encode_json(self._whole[1])
        if self.turn.audio is not None:
            return encode_json(render_completion(self.turn, self.identity, self.usage))
        head, rest = self._identity_json
        return (
            head
            + _COMPLETION_OBJECT
            + rest
            + b',"choices":'
            + prepared(self.turn).choices
            + b',"usage":'
            + encode_json(self.usage)
            + b"}"
        )
