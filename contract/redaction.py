"""Which headers carry credentials, and how every output hides them.

One place for both, because the checker's reports, the mock's request journal
and recorded fixtures must agree: a header that is secret in one of them is
secret in all. A header is a credential when its name says so (authorization,
cookie, token, key, secret, password, session, credential, signature, auth);
its value is then replaced wherever it appears, and so is the token part of
``Bearer sk-...`` and an excerpt cut inside a secret. JSON is redacted value by
value, never as serialized text, so a secret that looks like part of a number
cannot corrupt the output.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"
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
