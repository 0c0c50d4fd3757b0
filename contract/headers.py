"""``--header 'Name: value'``, as the checker, its pytest plugin and the recorder read it.

A header given on a command line usually carries an API key, so a malformed one is refused
without repeating it: the message shows at most its first word (of the name, when there is a
``:``), and nothing of a single word without one, which may be the bare key.
"""

from __future__ import annotations

import re

from .errors import UsageError

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP header name (RFC 9110 token)
_SHOWN = 40  # characters of the first word a message may show


class HeaderError(UsageError, ValueError):
    """A ``--header`` that is not ``Name: value``: a usage error of whichever command read it."""


def parse_header(text: str, option: str = "--header") -> tuple[str, str]:
    """``'Name: value'`` -> (name, value), both stripped; :class:`HeaderError` names ``option``, never the value."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep:
        words = text.split(None, 1)
        if len(words) < 2:  # one word alone may be the value itself
            raise HeaderError(_refusal(option, "this one has no ':'", "nothing of it is shown"))
        raise HeaderError(
            _refusal(option, f"the one starting {words[0][:_SHOWN]!r} has no ':'", "the rest is not shown")
        )
    if not _TOKEN.match(name):
        first_word = (name.split(None, 1) or [""])[0][:_SHOWN]
        what = f"the one starting {first_word!r} has no valid header name before its ':'"
        raise HeaderError(_refusal(option, what, "the rest is not shown"))
    return name, value.strip()


def _refusal(option: str, what: str, hidden: str) -> str:
    usage = f"usage: {option} 'NAME: VALUE'"
    return f"{option}: a header must look like 'Name: value', and {what} ({usage}; {hidden}: it may be a secret)"
