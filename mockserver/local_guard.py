"""Keep the local servers to the local user: refuse other hosts and other web origins.

Any web page the user opens can send requests to a loopback port: a ``no-cors`` ``fetch`` or a plain
``<form method=POST>`` needs no permission, and with DNS rebinding (a page's own domain made to resolve
to 127.0.0.1) it can read the answers too. Without these rules a page could send requests through the
recorder with the user's API key, plant a conversation, empty the journal or read it. The rules are
the ones local developer servers apply (Jupyter, Vite, webpack-dev-server):

- **Host**: a request must name this server by an IP address, ``localhost`` (or a name under
  ``.localhost``), or a host added with ``--allowed-host``. A rebinding page's requests carry its own
  domain name and are refused.
- **Origin**: a request that is not a read (any method but GET, HEAD, OPTIONS) with an ``Origin`` other
  than this server's own is refused before anything else happens: a page elsewhere, on another port
  of this machine included, cannot drive the mock or send through the recorder. An origin whose host
  was added with ``--allowed-host`` is allowed.
- **Content-Type**: a request with a body to an admin route that changes state (``/__mock/...``) must
  say ``application/json``, which a page on another origin cannot send without a CORS preflight, which
  these servers never grant; a body-less ``POST /__mock/reset`` (``curl -X POST``) stays allowed.

Each refusal is an Error body that says what to change: 403 (415 for the content type), and 400 on
the chat operation, which answers only with statuses the contract documents.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .faults import error_body

logger = logging.getLogger(__name__)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
ADMIN_PREFIX = "/__mock/"
# What a page on another origin may send without a preflight (the CORS-safelisted request types).
FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
_READ_HEADERS = {
    name.encode(): name for name in ("host", "origin", "content-type", "content-length", "transfer-encoding")
}
CHAT_PATHS = frozenset({"/chat/completions", "/v1/chat/completions"})  # its statuses are the contract's

Scope = dict[str, Any]
Receive = Any
Send = Any


@dataclass(frozen=True)
class AllowedHosts:
    """The hosts a request may name besides IP addresses and ``localhost``.

    ``example.test`` allows that name, ``.example.test`` it and every name under it, ``*`` any host.
    """

    names: tuple[str, ...] = ()

    def allows(self, host: str) -> bool:
        """An IP address, ``localhost``, a name under ``.localhost``, or an added name."""
        name = host.lower().rstrip(".")
        return not name or _is_ip(name) or name == "localhost" or name.endswith(".localhost") or self.named(name)

    def named(self, host: str) -> bool:
        """``host`` is one of the added names (or under an added ``.name``)."""
        name = host.lower().rstrip(".")
        for allowed in self.names:
            allowed = allowed.lower().rstrip(".")
            if allowed == "*" or name == allowed or (allowed.startswith(".") and f".{name}".endswith(allowed)):
                return True
        return False


def check_allowed_host(text: str) -> str:
    """``text`` as ``--allowed-host`` takes it; ValueError says why it is not a host name."""
    name = text.strip()
    if not name or (name != "*" and any(c in name for c in "/:@ \t\r\n")):
        raise ValueError(f"--allowed-host takes a host name such as example.test or .example.test, not {text!r}")
    return name


class LocalOnly:
    """ASGI middleware: refuse a foreign Host or Origin, and admin writes a web form could send."""

    def __init__(self, app: Any, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = AllowedHosts(tuple(allowed_hosts))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, code = refusal
        status = 400 if scope.get("path") in CHAT_PATHS else status
        logger.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), message)
        await _answer(send, status, error_body(status, message, code))

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, message, code) of the rule ``scope`` breaks, or None when it may be served."""
        headers = _headers(scope)
        host = headers.get("host", "")
        if host and not self.allowed.allows(_hostname(host)):
            return (
                403,
                f"Host {_shown(host)} is not this server's name; use 127.0.0.1 or localhost, "
                "or start it with --allowed-host NAME",
                "host_not_allowed",
            )
        method = scope.get("method", "GET")
        if method in READS:
            return None
        origin = headers.get("origin")
        if origin is not None and not self._same_or_allowed(origin, host):
            return (
                403,
                f"requests from the web page at {_shown(origin)} are refused: only this server's own pages "
                "(or hosts added with --allowed-host) may send it requests that change or send anything",
                "origin_not_allowed",
            )
        path = scope.get("path", "")
        if path.startswith(ADMIN_PREFIX) and not _json_or_empty(headers):
            return (
                415,
                f"{method} {path} takes Content-Type: application/json (got {_shown(headers.get('content-type', ''))})",
                "unsupported_media_type",
            )
        return None

    def _same_or_allowed(self, origin: str, host: str) -> bool:
        """The page is one this server served (its host and port are the Host header's), or its host was added."""
        try:
            parts = urlsplit(origin)
            authority, hostname = parts.netloc.lower(), parts.hostname or ""
        except ValueError:
            return False
        if not authority or parts.scheme not in ("http", "https"):
            return False  # "null" (a sandboxed frame, a file:// page) and anything unparsable
        if authority == host.lower():
            return True
        return self.allowed.named(hostname)


def _headers(scope: Scope) -> dict[str, str]:
    """The headers a rule reads, lower-cased names, the first of each; undecodable bytes kept as latin-1."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = _READ_HEADERS.get(name.lower())
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


def _json_or_empty(headers: dict[str, str]) -> bool:
    """The body is declared JSON, or there is none and no type was given (``curl -X POST``)."""
    given = headers.get("content-type")
    if given is None:
        return headers.get("content-length", "0").strip() in ("", "0") and "transfer-encoding" not in headers
    media = given.split(";")[0].strip().lower()
    return media not in FORM_TYPES and (media == "application/json" or media.endswith("+json"))


def _hostname(host: str) -> str:
    """The name in a Host header, without its port; ``[::1]:8000`` gives ``::1``."""
    host = host.strip()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _shown(text: str, limit: int = 80) -> str:
    """A header value quoted for a message, cut short: it comes from whoever sent the request."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
