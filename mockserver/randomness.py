"""Every random choice of one request, drawn from the server's seed and the request's number.

Replays are exact: the same seed and the same order of requests give the same reply ids, jitter and
faults. Most requests need only a reply id (no jitter, no fault rate), so the id comes from a hash, and
the Mersenne Twister, whose seeding costs more than finishing a prepared reply, is made only for a
request that draws more.
"""

from __future__ import annotations

import hashlib
import random
import string
from functools import cached_property

_ALPHABET = string.ascii_letters + string.digits
ID_CHARACTERS = bytes(ord(_ALPHABET[byte % len(_ALPHABET)]) for byte in range(256))  # a byte -> a letter or digit


class RequestDraws:
    """The draws of request ``number`` (from 1) of a server seeded with ``seed``."""

    def __init__(self, seed: int, number: int) -> None:
        self.key = f"{seed}:{number}"

    def reply_id(self) -> str:
        """``chatcmpl-`` and 29 letters and digits, different for every request and seed."""
        digest = hashlib.blake2b(self.key.encode(), digest_size=29).digest()
        return "chatcmpl-" + digest.translate(ID_CHARACTERS).decode("ascii")

    @cached_property
    def rng(self) -> random.Random:
        """For jitter and the fault rate: made on first use."""
        return random.Random(self.key)
