"""One request sent to a live server and everything that came back.

The runner fills these in as bytes arrive; the checks read them. Keeping the
record separate from both lets a check be a plain function over data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .sse import SSEComment, SSEEvent, SSEProblem

RequestKind = Literal["schema", "realistic", "negative"]
NOT_JSON = object()  # sentinel: the body was not parseable JSON
MAX_JSON_DEPTH = 200  # deeper replies are not judged: validating them would exhaust the stack


def parse_json(data: str | bytes) -> Any:
    """A server's JSON, or NOT_JSON when it is not JSON or nests deeper than :data:`MAX_JSON_DEPTH`.

    A hostile reply nested 100,000 deep must end as a failure of the check that reads it, never as a
    ``RecursionError`` in the parser or the validator.
    """
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return NOT_JSON
    if _opening_brackets(data) <= MAX_JSON_DEPTH:
        return value  # nothing can nest deeper than there are brackets: no need to walk the value
    return value if json_depth(value) <= MAX_JSON_DEPTH else NOT_JSON


def _opening_brackets(data: str | bytes) -> int:
    if isinstance(data, str):
        return data.count("{") + data.count("[")
    return data.count(b"{") + data.count(b"[")


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


@dataclass
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: Any  # the JSON value sent, or None when ``raw_body`` is deliberately not JSON
    raw_body: bytes
    kind: RequestKind = "schema"
    broken_rule: str | None = None  # negative requests: which single rule they break


@dataclass
class Timings:
    ttfb_ms: float | None = None  # first byte of the response body
    ttft_ms: float | None = None  # first event carrying content, a tool call or audio
    total_ms: float | None = None


@dataclass
class Exchange:
    request: PreparedRequest
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    content_type: str = ""
    body: bytes = b""  # non-stream bodies (capped); empty for streams
    json: Any = NOT_JSON
    events: list[SSEEvent] = field(default_factory=list)
    comments: list[SSEComment] = field(default_factory=list)
    sse_problems: list[SSEProblem] = field(default_factory=list)
    transport_error: str | None = None  # timeout, reset, cap exceeded: one line
    timings: Timings = field(default_factory=Timings)
    event_ms: list[float] = field(default_factory=list, repr=False)  # when each event arrived, ms after sending
    # When this request first went out on a kept-alive connection that the server had closed after
    # answering ``closed_after`` (without ``Connection: close``), and was sent again on a new one.
    closed_after: Exchange | None = field(default=None, repr=False, compare=False)
    # While checks judge the exchange: what they read of it (parsed events, the assembled reply), by
    # stream terminator, so each event is parsed once per exchange (contract.core.semantics.read_once).
    readings: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def is_stream(self) -> bool:
        return self.content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


@dataclass(frozen=True)
class Failure:
    """One way an exchange broke the contract; ``blame`` is "server" or "document"."""

    check: str
    message: str
    expected: str = ""
    seen: str = ""
    blame: Literal["server", "document"] = "server"
    witness: Any = None  # for document defects: an instance the document cannot tell apart
    # The exchange to blame when it is not the judged one (a connection closed after that answer);
    # such a failure is reported as found, never shrunk, since the judged request is innocent.
    culprit: Exchange | None = field(default=None, compare=False)
