"""The base URL a run is pointed at, checked in one place before anything tries to resolve it.

urllib and the resolver raise for some URLs no request could go to (an unclosed ``[``, a host label
over 63 characters); here each is a :class:`UsageError` with one line, and the URL is shown with its
credentials redacted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .core.redaction import redact_url
from .errors import UsageError


def base_url(url: str) -> str:
    """``url`` without its trailing slash, or UsageError saying why no request could go to it."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"URL {shown!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"URL {shown!r} must start with http:// or https://")
    if not parts.hostname:
        raise UsageError(f"URL {shown!r} has no host")
    try:
        _ = parts.port  # urllib checks the port only when it is read
    except ValueError:
        raise UsageError(f"URL {shown!r} has an invalid port") from None
    problem = _host_problem(parts.hostname)
    if problem:
        raise UsageError(f"URL {shown!r} has an invalid host: {problem}")
    if parts.query or parts.fragment:
        raise UsageError(f"URL {shown!r} must be a base URL without query or fragment")
    return url.rstrip("/")


def _host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a DNS name (empty label, label over 63 bytes, name over 253), or None."""
    if not host or ":" in host:  # no host is the runner's to report; an IPv6 literal has no labels
        return None
    labels = host.removesuffix(".").split(".")
    for label in labels:
        if not label:
            return "an empty label (two dots in a row, or a leading dot)"
        try:
            encoded = label.encode() if label.isascii() else label.encode("idna")
        except UnicodeError:
            return f"label {label[:30]!r} is not a valid host name label"
        if len(encoded) > 63:
            return f"a label of {len(encoded)} characters (at most 63)"
    if sum(len(label) + 1 for label in labels) - 1 > 253:
        return "a name over 253 characters"
    return None
