"""What an embeddings request asks for, read from its JSON body and refused the way OpenAI refuses it.

The contract documents chat completions only, so this body is checked here, against what OpenAI's
``POST /v1/embeddings`` accepts: a ``model``; an ``input`` that is a text, a list of texts (a batch of at most
2048), a list of token ids, or a list of such lists, none of them empty; ``encoding_format`` ``float`` or
``base64``; ``dimensions`` a whole number from 1 to :data:`~mockserver.embeddings.MAX_DIMENSIONS`. Each mistake
is a 400 whose ``param`` names the field. Keys it does not know are left alone, as other servers do, so a
client that sends a key of its own still gets vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract.core.validate import json_type, short_json

from .embeddings import MAX_DIMENSIONS, EmbeddingInput, default_dimensions
from .request_reading import ApiError

MAX_BATCH = 2048  # inputs in one request, as OpenAI allows
MAX_TOKEN_ID = 2**31 - 1  # far above any vocabulary; an id past it is no token
ENCODING_FORMATS = ("float", "base64")


@dataclass(frozen=True)
class EmbeddingRequest:
    """One request's model, inputs (in order), vector length and encoding."""

    model: str
    inputs: tuple[EmbeddingInput, ...]
    dimensions: int | None  # as asked; None for the model's own length
    encoding_format: str

    @property
    def length(self) -> int:
        """How long each hashed vector is."""
        return self.dimensions if self.dimensions is not None else default_dimensions(self.model)


def read_embedding_request(body: Any) -> EmbeddingRequest:
    """The request ``body`` makes, or :class:`ApiError` (400) naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise _refuse(f"the body must be a JSON object with model and input, got {_kind(body)}", None)
    model = body.get("model")
    if model is None:
        raise _refuse("you must give a model (for example text-embedding-3-small)", "model")
    if not isinstance(model, str) or not model:
        raise _refuse(f"model must be a model name, got {short_json(model)}", "model")
    if "input" not in body:
        raise _refuse("you must give an input: a text, a list of texts, or token ids", "input")
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODING_FORMATS:
        raise _refuse(f"encoding_format must be float or base64, got {short_json(encoding)}", "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise _refuse(
            f"dimensions must be a whole number from 1 to {MAX_DIMENSIONS}, got {short_json(dimensions)}",
            "dimensions",
        )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _refuse(f"user must be a string, got {short_json(user)}", "user")
    return EmbeddingRequest(model, read_inputs(body["input"]), dimensions, encoding or "float")


def read_inputs(raw: Any) -> tuple[EmbeddingInput, ...]:
    """``input`` as the list of things to embed: one text, texts, one list of token ids, or lists of them."""
    if isinstance(raw, str):
        if not raw:
            raise _refuse("input must not be an empty string", "input")
        return (raw,)
    if not isinstance(raw, list):
        raise _refuse(f"input must be a string, a list of strings or a list of token ids, got {_kind(raw)}", "input")
    if not raw:
        raise _refuse("input must not be an empty list", "input")
    first = raw[0]
    if isinstance(first, int) and not isinstance(first, bool):  # one input, as token ids
        return (_token_ids(raw, "input"),)
    if len(raw) > MAX_BATCH:
        raise _refuse(f"input holds {len(raw)} items; a request may embed at most {MAX_BATCH}", "input")
    if isinstance(first, str):
        return tuple(_text_at(raw, position) for position in range(len(raw)))
    if isinstance(first, list):
        return tuple(_tokens_at(raw, position) for position in range(len(raw)))
    raise _refuse(f"input[0] must be a string, a token id or a list of token ids, got {_kind(first)}", "input")


def _text_at(raw: list[Any], position: int) -> str:
    item = raw[position]
    if not isinstance(item, str):
        raise _refuse(f"input[{position}] must be a string like input[0], got {_kind(item)}", "input")
    if not item:
        raise _refuse(f"input[{position}] must not be an empty string", "input")
    return item


def _tokens_at(raw: list[Any], position: int) -> tuple[int, ...]:
    item = raw[position]
    if not isinstance(item, list):
        raise _refuse(f"input[{position}] must be a list of token ids like input[0], got {_kind(item)}", "input")
    if not item:
        raise _refuse(f"input[{position}] must not be an empty list", "input")
    return _token_ids(item, f"input[{position}]")


def _token_ids(items: list[Any], where: str) -> tuple[int, ...]:
    for index, token in enumerate(items):
        if not _is_token_id(token):
            raise _refuse(
                f"{where}[{index}] must be a token id (a whole number from 0 to {MAX_TOKEN_ID}), "
                f"got {short_json(token)}",
                "input",
            )
    return tuple(items)


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_ID


def _kind(value: Any) -> str:
    kind = json_type(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _refuse(message: str, param: str | None) -> ApiError:
    return ApiError(400, message, "invalid_request", param)
