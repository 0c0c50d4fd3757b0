"""One line for each way an HTTP exchange fails below HTTP, in the same words from the checker and the recorder.

httpx raises a class per failure (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``, ...)
with the socket's or the parser's own message; a user reads what went wrong first and that message
after it. A TLS handshake that failed gets words of its own: ``https://`` to a plain-HTTP port is
the common case, and "could not connect" would be wrong about a server that plainly answered.
"""

from __future__ import annotations

import re
import ssl

import httpx

# What was being done when each kind of timeout fired (exactly that class; "waiting" for the others).
TIMEOUT_ACTIVITY: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connecting",
    httpx.ReadTimeout: "waiting for the response",
    httpx.WriteTimeout: "sending the request",
    httpx.PoolTimeout: "waiting for a connection",
}
# The first class ``exc`` is an instance of names what broke (a timeout says what it was waiting for).
_FAILURES: dict[type[Exception], str] = {
    httpx.RemoteProtocolError: "not valid HTTP",
    httpx.ReadError: "the connection broke",
    httpx.ConnectError: "could not connect",
    httpx.DecodingError: "the body could not be decoded",
    httpx.PoolTimeout: "pool exhausted (every connection to the server is in use)",
}
# What OpenSSL says when the other end answers a ClientHello with plain HTTP (or hangs up on it).
_PLAIN_HTTP_SIGNS = ("wrong version number", "record layer failure", "packet length too long", "http request", "eof")
_SSL_NOISE = re.compile(r"\[SSL: [^\]]*\]|\(_ssl\.c:\d+\)")  # OpenSSL's code names and source lines


def describe_transport_error(exc: Exception) -> str:
    """``what broke: the library's message`` (at most 200 characters of it), on one line."""
    tls = tls_failure(exc) if isinstance(exc, httpx.ConnectError) else None
    if tls is not None:
        return tls
    label = next((text for cls, text in _FAILURES.items() if isinstance(exc, cls)), None)
    if label is None:
        label = f"timed out {timeout_activity(exc)}" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"{label}: {detail[:200]}"


def timeout_activity(exc: httpx.TimeoutException) -> str:
    """What the client was doing when ``exc`` fired: ``connecting``, ``sending the request``, ..."""
    return TIMEOUT_ACTIVITY.get(type(exc), "waiting")


def tls_failure(exc: BaseException) -> str | None:
    """One line for a failed TLS handshake, or None when ``exc`` (or what it wraps) is not one."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ssl.SSLError):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    if isinstance(seen, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {seen.verify_message or seen.reason}"
    detail = _SSL_NOISE.sub("", " ".join(str(seen).split())).strip() or type(seen).__name__
    if any(sign in detail.lower() for sign in _PLAIN_HTTP_SIGNS):
        return f"TLS handshake failed: is the server serving plain HTTP? try http:// ({detail[:100]})"
    return f"TLS handshake failed: {detail[:200]}"
