"""``POST /embeddings``: a vector for each input, pinned by a fixture or made from the input's hash.

The request is read as the chat route reads one (the same body cap, content type and JSON errors), checked
by ``embedding_request``, and answered in OpenAI's shape with the mock's own token counts, so that
``client.embeddings.create``, litellm and the AI SDK's ``embed`` get what they get from OpenAI. Each request
is journaled once, whole, like a chat request; its ``fixture`` names the fixtures whose pins answered, or is
``hashed`` when every vector came from its input's hash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from contract.core import fastjson
from contract.core.redaction import Redactor, secret_values

from .chat_route import header_text
from .embedding_pins import PinnedVector, PinTable, pin_table
from .embedding_request import EmbeddingRequest, read_embedding_request
from .embeddings import base64_floats, hashed_vector
from .request_body import journal_body
from .request_reading import JSON_MEDIA, ApiError, ClientGone, check_content_type, parse_json, read_body
from .state import JournalEntry, MockState
from .tokenize import count_tokens

HASHED = "hashed"  # the journal's ``fixture`` when no pin answered
OFF_THE_LOOP_AT = 50_000  # coordinates; a larger reply is made in a thread, so other clients' streams keep pace


async def embeddings(state: MockState, request: Request) -> Response:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}
    items = list(headers.items())
    entry = JournalEntry(
        time.time(), request.method, request.scope["path"], Redactor(secret_values(items)).headers(items)
    )
    try:
        response = await _answer(state, request, headers, entry)
        entry.status = response.status_code
    except ApiError as exc:
        entry.status, entry.error = exc.status, {"code": exc.code, "message": exc.message}
        raise
    except ClientGone as gone:
        entry.error = {"code": "client_disconnected", "message": str(gone)}
        raise
    except Exception:
        entry.status = 500
        raise
    finally:
        state.store.record(entry.as_json())
    return response


async def _answer(state: MockState, request: Request, headers: dict[str, str], entry: JournalEntry) -> Response:
    check_content_type(headers)
    raw = await read_body(request, headers, state.settings.max_body)
    entry.body = raw[:2000].decode("utf-8", "replace")  # replaced by the parsed body once it parses
    body = parse_json(raw)
    entry.body = journal_body(body, len(raw))
    asked = read_embedding_request(body)
    pins = _pins_for(asked, pin_table(state.store.fixtures), state.folder)
    names = list(dict.fromkeys(pin.fixture for pin in pins if pin is not None))
    entry.fixture = ", ".join(names) if names else HASHED
    label = ", ".join(f"{pin.fixture} ({_in_folder(state.folder, pin.where)})" for pin in pins if pin is not None)
    large = asked.length * len(asked.inputs) > OFF_THE_LOOP_AT
    content = await asyncio.to_thread(reply_bytes, asked, pins) if large else reply_bytes(asked, pins)
    return Response(content, media_type=JSON_MEDIA, headers={"X-Mock-Fixture": header_text(label or HASHED)})


def _pins_for(asked: EmbeddingRequest, table: PinTable, folder: Path | None) -> list[PinnedVector | None]:
    """The pin of each input (None where none is), refusing a pin whose length the request's ``dimensions``
    contradicts: cutting or padding a pinned vector would return one the fixture does not hold."""
    pins = [table.find(asked.model, item) if isinstance(item, str) else None for item in asked.inputs]
    for pin in pins:
        if pin is not None and asked.dimensions is not None and asked.dimensions != len(pin.vector):
            raise ApiError(
                400,
                f"fixture {pin.fixture} ({_in_folder(folder, pin.where)}) pins a vector of "
                f"{len(pin.vector)} numbers to {pin.input[:60]!r}, and the request asks for dimensions "
                f"{asked.dimensions}",
                "fixture_mismatch",
                "dimensions",
            )
    return pins


def reply_bytes(asked: EmbeddingRequest, pins: Sequence[PinnedVector | None]) -> bytes:
    """The response body: OpenAI's list of embeddings, in input order, with the prompt's token count."""
    data: list[dict[str, Any]] = []
    for index, (item, pin) in enumerate(zip(asked.inputs, pins, strict=True)):
        vector = list(pin.vector) if pin is not None else hashed_vector(asked.model, item, asked.length)
        encoded: list[float] | str = base64_floats(vector) if asked.encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(item) if isinstance(item, str) else len(item) for item in asked.inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return fastjson.dumps({"object": "list", "data": data, "model": asked.model, "usage": usage})


def _in_folder(folder: Path | None, where: str) -> str:
    """``where`` with the fixtures folder left out (``search/pins.yaml:4``), as users see their files."""
    if folder is None:
        return where
    for prefix in {str(folder.resolve()).rstrip("/") + "/", str(folder).rstrip("/") + "/"}:
        where = where.replace(prefix, "")
    return where
