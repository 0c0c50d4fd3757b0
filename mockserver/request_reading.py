"""Reading a request within the server's limits, and the refusal that every route raises.

A step that refuses raises :class:`ApiError`; the app turns it into the
contract's Error body with its stable ``code``. The body is read piece by piece
and abandoned at ``--max-body``, so an oversize upload costs no more than the
cap; a client that leaves while its body is read is :class:`ClientGone`,
which is nobody's error to answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from .faults import error_body
from .request_body import BodyProblem, parse_request_json

JSON_MEDIA = "application/json"

T = TypeVar("T")


class ClientGone(Exception):
    """The client left while its request was being read: there is nobody to answer."""


class ApiError(Exception):
    """A refusal that becomes an Error body; raised anywhere on the request path."""

    def __init__(
        self, status: int, message: str, code: str, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_body(self.status, self.message, self.code, self.param), self.status, headers=self.headers
        )


def check_content_type(headers: Mapping[str, str]) -> None:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA:
        seen = repr(media) if media else "no Content-Type"
        raise ApiError(
            400,
            f"the body must be application/json (the only request type the contract documents), got {seen}",
            "unsupported_content_type",
        )


async def read_body(request: Request, headers: Mapping[str, str], cap: int) -> bytes:
    """The body, read piece by piece from the server and abandoned as soon as it passes ``cap`` bytes."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    pieces: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone(f"the client closed the connection after {size} bytes of its body")
        piece = message.get("body", b"")
        pieces.append(piece)
        size += len(piece)
        if size > cap:
            raise _too_large(cap)
        if not message.get("more_body", False):
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # nearly every body is one piece


def _too_large(cap: int) -> ApiError:
    return ApiError(400, f"the body is larger than the server's limit of {cap} bytes (--max-body)", "body_too_large")


def parse_json(raw: bytes) -> Any:
    try:
        return parse_request_json(raw)
    except BodyProblem as exc:
        raise ApiError(400, str(exc), "invalid_json") from None


def parsed_header(headers: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    """The header ``name`` as ``parse`` reads it, None when absent; a value it refuses is an ``invalid_header``."""
    text = headers.get(name)
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise ApiError(400, str(exc), "invalid_header", name) from None
