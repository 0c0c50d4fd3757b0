"""Split text into pieces the way a byte-pair-encoding tokenizer roughly would.

Client code that parses streams breaks on realistic chunk boundaries (a word
cut in two, a space at the start of a piece, a number in three-digit groups),
not on whole words or single characters. No vocabulary is shipped: a fixed,
deterministic rule gives pieces that look like real ones (" Paris", " sun",
"ny", ".") and always concatenate back to the exact text.
"""

from __future__ import annotations

import functools
import re

# Pre-tokenisation in the style of GPT tokenizers: contractions, a word with its
# leading space, digits in groups of at most three, punctuation runs, whitespace.
_PRETOKEN = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)(?![^\W\d_])"  # contractions
    r"| ?[^\W\d_]+"  # letters, with one leading space
    r"|\d{1,3}"  # numbers, in groups of at most three digits
    r"| ?[^\s\w]{1,3}"  # punctuation, a few marks at a time
    r"| ?_+"  # underscores (word characters that are neither letters nor digits)
    r"|\s+(?!\S)|\s+",  # whitespace; a run before a word leaves its last space to the word
    re.UNICODE,
)

_VOWELS = frozenset("aeiouyAEIOUYàâäéèêëîïôöùûüÿæœåøáíóúý")
_DIGRAPHS = ("th", "ch", "sh", "ph", "wh", "ck", "ng", "qu", "gh")
_SUFFIXES = (
    "ations",
    "ation",
    "tions",
    "tion",
    "ments",
    "ment",
    "ness",
    "ings",
    "ing",
    "able",
    "ible",
    "ful",
    "less",
    "ous",
    "ive",
    "est",
    "ers",
    "ly",
    "ed",
    "er",
)
# Frequent words every real vocabulary holds whole, however long.
_COMMON_WORDS = frozenset(
    """
    about after again being before could during every first hello other people please right should
    there these thing think those through today under until weather where which while world would
    years thanks thank great sorry answer question help sunny cloudy morning evening degrees
""".split()
)
_SHORT_WORD = 4  # letters; shorter words are one token, as in every real vocabulary
_LONG_PIECE = 6  # a piece longer than this is split again
_NOISE_WORD = 48  # letters; a longer run is no word (a hash, a pasted blob): cut in fixed pieces, linearly
_NOISE_PIECE = 4


def tokenize(text: str) -> list[str]:
    """The pieces of ``text``, in order; ``"".join(tokenize(t)) == t`` always holds."""
    pieces: list[str] = []
    for match in _PRETOKEN.finditer(text):
        word = match.group()
        if word.strip() and word.strip()[0].isalpha():
            pieces.extend(_split_word(word))
        else:
            pieces.append(word)
    return pieces


COUNT_EXACTLY = 32_768  # characters; beyond, the count is scaled from the first ones (bounded work per request)
# Clients send the same messages again and again (the system prompt, the conversation so far), so the
# counts of short texts are remembered; the bound keeps the memory at a few megabytes.
REMEMBER_UP_TO = 2_048


def count_tokens(text: str) -> int:
    """How many tokens ``text`` costs under :func:`tokenize`.

    A prompt of a megabyte would take a quarter of a second to count on the event loop, delaying every
    other client's stream; past :data:`COUNT_EXACTLY` characters the count is scaled from the rate of
    the first ones, which is what a usage figure needs.
    """
    if not text:
        return 0
    if len(text) <= REMEMBER_UP_TO:
        return _count_short(text)
    if len(text) <= COUNT_EXACTLY:
        return len(tokenize(text))
    head = len(tokenize(text[:COUNT_EXACTLY]))
    return max(head, round(head * len(text) / COUNT_EXACTLY))


def _split_word(word: str) -> list[str]:
    """Cut a word (with its leading space, if any) into word pieces."""
    space = " " if word.startswith(" ") else ""
    letters = word[len(space) :]
    if len(letters) <= _SHORT_WORD or letters.lower() in _COMMON_WORDS:
        return [word]
    if len(letters) > _NOISE_WORD:
        parts = [letters[i : i + _NOISE_PIECE] for i in range(0, len(letters), _NOISE_PIECE)]
        parts[0] = space + parts[0]
        return parts
    stem, suffix = _strip_suffix(letters)
    parts = _split_stem(stem) + ([suffix] if suffix else [])
    parts[0] = space + parts[0]
    return parts


def _strip_suffix(letters: str) -> tuple[str, str]:
    lower = letters.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(letters) - len(suffix) >= 3:
            return letters[: -len(suffix)], letters[-len(suffix) :]
    return letters, ""


def _split_stem(stem: str) -> list[str]:
    """Cut between two consonants that follow a vowel ("sun|ny"); cut long pieces near their middle."""
    parts: list[str] = []
    start = 0
    for cut in _syllable_cuts(stem):
        if cut - start >= 2 and len(stem) - cut >= 2:
            parts.append(stem[start:cut])
            start = cut
    parts.append(stem[start:])
    result: list[str] = []
    for part in parts:
        result.extend(_split_long(part))
    return result


def _syllable_cuts(stem: str) -> list[int]:
    cuts = []
    for i in range(1, len(stem) - 1):
        if (
            stem[i - 1] in _VOWELS
            and _is_consonant(stem[i])
            and _is_consonant(stem[i + 1])
            and stem[i : i + 2].lower() not in _DIGRAPHS
        ):
            cuts.append(i + 1)
    return cuts


def _split_long(part: str) -> list[str]:
    """A piece over ``_LONG_PIECE`` letters is cut before a consonant after a vowel nearest its middle."""
    if len(part) <= _LONG_PIECE:
        return [part]
    middle = len(part) // 2
    candidates = [
        i
        for i in range(2, len(part) - 1)
        if part[i - 1] in _VOWELS and _is_consonant(part[i]) and part[i - 1 : i + 1].lower() not in _DIGRAPHS
    ]
    cut = min(candidates, key=lambda i: (abs(i - middle), i)) if candidates else min(middle, 4)
    return _split_long(part[:cut]) + _split_long(part[cut:])


def _is_consonant(char: str) -> bool:
    return char.isalpha() and char not in _VOWELS


@functools.lru_cache(maxsize=4_096)
def _count_short(text: str) -> int:
    return len(tokenize(text))
