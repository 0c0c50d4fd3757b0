"""Which headers carry credentials, and how every output hides them.

One place for both, because the checker's reports, the mock's request journal
and recorded fixtures must agree: a header that is secret in one of them is
secret in all. A header is a credential when its name says so (authorization,
cookie, token, key, secret, password, session, credential, signature, auth);
its value is then replaced wherever it appears, and so is the token part of
``Bearer sk-...`` and an excerpt cut inside a secret. JSON is redacted value by
value, never as serialized text, so a secret that looks like part of a number
cannot corrupt the output.

Credentials in a URL (``http://user:password@host``) are hidden the same way in every text:
``user:***@``; the rerun line names them as shell variables instead (:mod:`contract.rerun`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"
URL_PASSWORD_SHOWN = "***"
# The shell variables the rerun line puts in a URL for its credentials: names, not secrets.
URL_PASSWORD_VARIABLE = "${URL_PASSWORD}"
URL_USERINFO_VARIABLE = "${URL_USERINFO}"
# ``scheme://userinfo@``: the userinfo runs to the last "@" before the host's path, query or fragment.
# Quotes, angle brackets and backslashes end it, so a URL inside JSON or HTML never swallows its neighbours.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\"'<>\\]*)@")
_MIN_URL_SECRET = 8  # shorter passwords are hidden in URLs only: scrubbing "pass" everywhere would mangle "passed"
# Words that make a header name a credential; matched on the lower-cased name split at "-" and "_",
# and as substrings for the compound ones (x-apikey, x-auth-token, proxy-authorization, set-cookie).
_SECRET_WORDS = (
    "authorization",
    "auth",
    "cookie",
    "token",
    "key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "pass",
    "session",
    "credential",
    "credentials",
    "signature",
)
_SECRET_PARTS = (
    "authoriz",
    "cookie",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "secret",
    "password",
    "passwd",
    "credential",
    "signature",
    "session",
)
_TRUNCATED = re.compile(r"(\S{4,})(…|\.\.\.)")  # the last word before an ellipsis that cut it short


@functools.lru_cache(maxsize=1_024)  # asked for every header of every request the mock journals
def is_secret_header(name: str) -> bool:
    """Whether a header's value is a credential, by its name alone."""
    lowered = name.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[-_\s]+", lowered))


def secret_values(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The values of the credential headers, to be scrubbed from everything else."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple(value for name, value in items if is_secret_header(name) and value)


class Redactor:
    """Hides credential headers and, anywhere in text or JSON, the values they carried."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        secrets = tuple(secrets)
        tokens = {part for secret in secrets for part in secret.split() if len(part) >= 8}  # "Bearer sk-..."
        self.secrets = tuple(sorted({s for s in (*secrets, *tokens) if len(s) >= 4}, key=len, reverse=True))

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return {name: (REDACTED if is_secret_header(name) else self.text(value)) for name, value in items}

    def text(self, text: str) -> str:
        text = redact_url(text)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
            if len(secret) > 4:  # an excerpt cut inside a secret ("Bearer sk-li…") still shows its start
                text = _TRUNCATED.sub(functools.partial(_hide_cut_secret, secret), text)
        return text

    def value(self, value: Any) -> Any:
        """A JSON value with every string (keys too) redacted; numbers and the rest as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(key)): self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


def _hide_cut_secret(secret: str, match: re.Match[str]) -> str:
    """An excerpt that ends inside ``secret`` keeps its ellipsis and loses the part of the secret it shows."""
    return REDACTED + match.group(2) if secret.startswith(match.group(1)) else match.group(0)


def redact_url(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` as ``scheme://user:***@`` (a bare ``token@`` as ``***@``)."""
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(_hide_userinfo, text)


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, password = match.group("userinfo").partition(":")
    if password == URL_PASSWORD_VARIABLE or (not colon and user == URL_USERINFO_VARIABLE):
        return match.group(0)  # the rerun line's shell variable, not a secret
    shown = f"{user}:{URL_PASSWORD_SHOWN}" if colon else URL_PASSWORD_SHOWN
    return f"{match.group('scheme')}{shown}@"


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of a URL (or its bare userinfo), as written and decoded, to scrub wherever a server echoes it."""
    try:
        parts = urlsplit(url)
        found = parts.password if parts.password is not None else (parts.username or "")
    except ValueError:
        return ()
    return tuple(s for s in dict.fromkeys((found, unquote(found))) if len(s) >= _MIN_URL_SECRET)
