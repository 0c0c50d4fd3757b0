"""Where the recorder forwards to: the live server's base URL and the headers added to each request.

The command line reads these before anything heavy is imported, so a bad URL
or a malformed ``--header`` is one line and exit code 2 at once. A header's
value is usually an API key, so no message here ever repeats one.
"""

from __future__ import annotations

import urllib.parse
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from contract.headers import HeaderError, parse_header

API_KEY_VARIABLE = "OPENAI_API_KEY"
# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Not forwarded either: the HTTP client sets Host and Content-Length, and the recorder asks for identity
# encoding so that it can read what it relays.
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "accept-encoding"}
DECODED_STEP = 64 * 1024  # most bytes one call unpacks, so a compressed reply costs memory and loop time in steps
_ZLIB_WINDOWS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS | 32}


@dataclass(frozen=True)
class Upstream:
    """The live server: its API base URL and the headers added to every forwarded request."""

    base_url: str  # scheme://host[:port]/path, with the query the user gave, if any
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str, headers: Sequence[tuple[str, str]] = ()) -> Upstream:
        """``http://host:port`` (taken as ``.../v1``) or a base with its path; ValueError with one line."""
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"--upstream: not a URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"--upstream: expected http://HOST:PORT or https://HOST/v1, got {_without_credentials(parts)!r}"
            )
        if parts.fragment:
            raise ValueError("--upstream: a URL with a #fragment cannot be forwarded to")
        path = parts.path.rstrip("/") or "/v1"
        del port  # read only to reject a bad one
        return cls(urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")), tuple(headers))

    @property
    def endpoint(self) -> str:
        """The chat-completion URL: the base's path with ``/chat/completions`` added, its query kept."""
        parts = urllib.parse.urlsplit(self.base_url)
        return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))

    @property
    def display(self) -> str:
        """The URL without user info or query, either of which may carry a credential: safe to print and write."""
        return _without_credentials(urllib.parse.urlsplit(self.base_url))


def _without_credentials(parts: urllib.parse.SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(no scheme)"


def forwarded_header(text: str) -> tuple[str, str]:
    """A ``--header`` of the recorder: read as every command reads one, and refused if the proxy sets it itself."""
    name, value = parse_header(text)
    if name.lower() in NOT_FORWARDED:
        raise HeaderError(f"--header: {name} is set by the proxy itself and cannot be given")
    return name, value


def upstream_headers(given: Sequence[str], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``--header`` values, plus ``Authorization: Bearer $OPENAI_API_KEY`` when none sets Authorization."""
    headers = [forwarded_header(text) for text in given]
    key = environ.get(API_KEY_VARIABLE, "").strip()
    if key and not any(name.lower() == "authorization" for name, _ in headers):
        headers.append(("Authorization", f"Bearer {key}"))
    return headers


class UnpackError(Exception):
    """The upstream's compressed body is corrupt."""


class BoundedDecoder:
    """Unpacks a ``Content-Encoding: gzip`` or ``deflate`` body in steps of at most :data:`DECODED_STEP` bytes.

    httpx unpacks each network read at once, so a few kilobytes of a gzip bomb become gigabytes
    in one call; here the caller gets bounded pieces and can stop, or let other tasks run, between them.
    """

    def __init__(self, encoding: str) -> None:
        self._zlib = zlib.decompressobj(_ZLIB_WINDOWS[encoding]) if encoding in _ZLIB_WINDOWS else None

    @classmethod
    def for_encoding(cls, header: str) -> BoundedDecoder | None:
        """The decoder for a ``Content-Encoding`` value; ``None`` for one it cannot unpack (``br``, two codings)."""
        encoding = header.strip().lower()
        if encoding in ("", "identity") or encoding in _ZLIB_WINDOWS:
            return cls(encoding)
        return None

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            if data:
                yield data
            return
        try:
            while True:
                piece = self._zlib.decompress(data, DECODED_STEP)
                if piece:
                    yield piece
                data = self._zlib.unconsumed_tail
                if not data and len(piece) < DECODED_STEP:
                    return
        except zlib.error as exc:
            raise UnpackError(f"the upstream's compressed body is corrupt ({exc})") from None
