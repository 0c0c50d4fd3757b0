"""Embedding vectors made from a hash of their input: the same input always gives the same unit vector.

Client code that embeds is tested for what it does with vectors (stores them, compares them, ranks by them),
not for what a model thinks a text means. So a vector is drawn from the SHA-3 hash (SHAKE-256) of the model and
the input, turned into normally distributed coordinates by Box-Muller and scaled to length 1: the same on every
run, machine and Python version (no ``random`` module, whose algorithms may change), and, for different inputs,
as unrelated as two random directions (cosine similarity near 0). The coordinates come as one stream, so a
request for fewer ``dimensions`` gets the head of the longer vector scaled to length 1 again, which is how
OpenAI's shortened embeddings relate to the full ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from collections.abc import Sequence

MAX_DIMENSIONS = 8192  # the most a request may ask for; the largest real embedding models stay below
DEFAULT_DIMENSIONS = 1536
MODEL_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}

EmbeddingInput = str | tuple[int, ...]  # a text, or the token ids a client encoded it into itself

_UNIT = 2.0**-32  # one uint32 step, as a fraction of 1
_TAU = 2.0 * math.pi


def default_dimensions(model: str) -> int:
    """How long the model's vectors are when the request does not say: OpenAI's figure for its models."""
    return MODEL_DIMENSIONS.get(model, DEFAULT_DIMENSIONS)


def hashed_vector(model: str, item: EmbeddingInput, dimensions: int) -> list[float]:
    """The unit vector of ``item`` under ``model``, ``dimensions`` long (1 to :data:`MAX_DIMENSIONS`).

    A text and the list of token ids that looks like it hash apart (``"1"`` is not ``[1]``): they are
    different inputs to a real model too.
    """
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"dimensions must be 1 to {MAX_DIMENSIONS}, got {dimensions}")
    key = json.dumps([model, item if isinstance(item, str) else list(item)]).encode()
    pairs = (dimensions + 1) // 2
    words = struct.unpack(f"<{2 * pairs}I", hashlib.shake_256(key).digest(8 * pairs))
    coordinates: list[float] = []
    for first, second in zip(words[0::2], words[1::2], strict=True):
        radius = math.sqrt(-2.0 * math.log((first + 1) * _UNIT))  # (first + 1) / 2**32 lies in (0, 1]
        angle = _TAU * second * _UNIT
        coordinates.append(radius * math.cos(angle))
        coordinates.append(radius * math.sin(angle))
    del coordinates[dimensions:]
    return unit(coordinates)


def unit(vector: list[float]) -> list[float]:
    """``vector`` scaled to length 1 (all zeros stays all zeros: it has no direction to keep)."""
    length = math.sqrt(math.fsum(x * x for x in vector))
    return [x / length for x in vector] if length > 0 else vector


def base64_floats(vector: Sequence[float]) -> str:
    """``vector`` as OpenAI's ``encoding_format: base64`` sends it: little-endian float32s, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
