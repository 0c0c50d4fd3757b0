"""Faults a client must survive: error statuses and broken streams, planned before the first byte.

A plan comes from a fixture turn's ``fault``, an ``X-Mock-Fault`` request
header, or the command line's seeded fault rate; the same plan always turns
the same chunks into the same network writes, so a failing client test
replays exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .stream import DONE

ERROR_STATUSES = (400, 401, 404, 429, 500, 503)  # the error statuses the contract documents
SPLIT_GAP_S = 0.05  # between the two halves of a split character: long enough to be two reads
_KEYS: dict[str, tuple[str, ...]] = {
    "http_error": ("status", "retry_after", "retry_after_ms"),
    "disconnect": ("after_chunks",),
    "stall": ("after_chunks", "stall_ms"),
    "malformed_chunk": ("after_chunks",),
    "no_done": (),
    "keepalive": ("every_chunks",),
    "split_utf8": (),
}
FAULT_TYPES = tuple(_KEYS)  # every fault a fixture, a header or --fault-types can name
COMMON_KEYS = ("times",)  # the first N matching requests get the fault, later ones the reply
DEFAULT_RETRY_AFTER = 2  # seconds, on a 429 that names no wait
_ERROR_KINDS = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "service_unavailable"),
}


@dataclass(frozen=True)
class FaultPlan:
    """One fault; fields that do not apply to ``type`` keep their defaults."""

    type: str
    status: int = 500
    retry_after: int | None = None  # seconds; a 429 without one says DEFAULT_RETRY_AFTER
    retry_after_ms: int | None = None  # sent as retry-after-ms, which the official SDKs prefer
    after_chunks: int = 0
    stall_ms: float = 1000.0
    every_chunks: int = 1
    times: int | None = None  # only the first N matching requests get the fault

    def describe(self) -> str:
        keys = (*_KEYS[self.type], *COMMON_KEYS)
        values = ((key, getattr(self, key)) for key in keys)
        return "; ".join([self.type, *(f"{key}={value:g}" for key, value in values if value is not None)])


@dataclass(frozen=True)
class Disconnect:
    """Close the connection here, without finishing the response."""

    fault: str = "disconnect"  # the fault that planned it, for the log line that says the cut was on purpose


@dataclass(frozen=True)
class Write:
    """Bytes to send after waiting ``delay`` seconds."""

    delay: float
    data: bytes


DISCONNECT = Disconnect()


def parse_fault(spec: Any) -> FaultPlan:
    """A plan from ``{type: ..., key: value}``; ValueError with one line when the spec is bad."""
    if not isinstance(spec, dict):
        raise ValueError(f"a fault must be a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in _KEYS:
        raise ValueError(f"fault type {kind!r} is not one of {', '.join(FAULT_TYPES)}")
    unknown = sorted(set(spec) - {"type", *_KEYS[kind], *COMMON_KEYS})
    if unknown:
        allowed = ", ".join((*_KEYS[kind], *COMMON_KEYS))
        raise ValueError(f"fault {kind}: unknown key {unknown[0]!r} (allowed: {allowed})")
    values: dict[str, Any] = {}
    for key in (*_KEYS[kind], *COMMON_KEYS):
        if key in spec:
            values[key] = _number(kind, key, spec[key])
    plan = FaultPlan(type=kind, **values)
    if plan.times is not None and plan.times < 1:
        raise ValueError(f"fault {kind}: times must be at least 1 (the first N requests get the fault)")
    if plan.retry_after is not None and plan.retry_after_ms is not None:
        raise ValueError(f"fault {kind}: give retry_after (seconds) or retry_after_ms, not both")
    if kind == "http_error" and plan.status not in ERROR_STATUSES:
        raise ValueError(
            f"fault http_error: status {plan.status} is not a documented error status "
            f"({', '.join(map(str, ERROR_STATUSES))})"
        )
    if kind == "keepalive" and plan.every_chunks < 1:
        raise ValueError("fault keepalive: every_chunks must be at least 1")
    return plan


def _number(kind: str, key: str, value: Any) -> int | float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "stall_ms":
        if not is_number or not 0 <= value <= 600_000:
            raise ValueError(f"fault {kind}: stall_ms must be a number of milliseconds from 0 to 600000, got {value!r}")
        return float(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"fault {kind}: {key} must be a whole number, 0 or more, got {value!r}")
    return value


def parse_fault_header(text: str) -> FaultPlan:
    """``X-Mock-Fault: disconnect; after_chunks=3`` (the keys of a fixture's ``fault``)."""
    kind, *items = [part.strip() for part in text.split(";")]
    spec: dict[str, Any] = {"type": kind}
    for item in filter(None, items):
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"X-Mock-Fault: {item!r} is not key=value")
        try:
            spec[key.strip()] = float(raw) if "." in raw else int(raw)
        except ValueError:
            raise ValueError(f"X-Mock-Fault: {key.strip()} must be a number, got {raw.strip()!r}") from None
    try:
        return parse_fault(spec)
    except ValueError as exc:
        raise ValueError(f"X-Mock-Fault: {exc}") from None


def parse_fault_types(text: str) -> tuple[str, ...]:
    """``http_error,disconnect`` from the command line; ValueError on an unknown name."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    problem = fault_types_problem(names)
    if problem is not None:
        raise ValueError(problem)
    return names


def fault_types_problem(names: Sequence[str]) -> str | None:
    """Why ``names`` cannot be the fault types drawn from (an unknown one, or none), or None."""
    for name in names:
        if name not in FAULT_TYPES:
            return f"unknown fault type {name!r} (known: {', '.join(FAULT_TYPES)})"
    return None if names else "no fault types given"


def random_fault(rng: random.Random, types: Sequence[str], chunk_count: int) -> FaultPlan:
    """A fault of one of ``types`` with parameters drawn from the request's seeded RNG."""
    kind = rng.choice(list(types))
    after = rng.randint(1, max(1, chunk_count - 1))
    if kind == "http_error":
        status, wait = rng.choice((429, 500, 503)), rng.randint(1, 3)
        return FaultPlan(kind, status=status, retry_after=wait if status == 429 else None)
    if kind == "stall":
        return FaultPlan(kind, after_chunks=after, stall_ms=float(rng.randint(200, 2000)))
    if kind == "keepalive":
        return FaultPlan(kind, every_chunks=rng.randint(1, 4))
    return FaultPlan(kind, after_chunks=after)


def fault_problem(plan: FaultPlan, events: Sequence[bytes]) -> str | None:
    """Why ``plan`` cannot apply to the reply whose encoded events are ``events``, or ``None``."""
    if plan.type == "split_utf8" and not any(_first_multibyte(event) for event in events):
        return "split_utf8 needs a character outside ASCII in the reply, and this reply has none"
    return None


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The contract's Error body, with the ``type`` OpenAI-compatible servers use for ``status``."""
    other = ("invalid_request_error", "invalid_request") if status < 500 else ("server_error", "internal_error")
    kind, default_code = _ERROR_KINDS.get(status, other)
    return {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}


def injected_error(plan: FaultPlan) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers of an ``http_error`` fault.

    A 429 always names a wait; other statuses only when the fault gives one.
    ``retry_after_ms`` goes out as ``retry-after-ms`` (what OpenAI-compatible
    SDKs read first, so retries in tests take milliseconds), with the standard
    ``Retry-After`` rounded up to whole seconds beside it.
    """
    headers: dict[str, str] = {}
    wait = ""
    if plan.retry_after_ms is not None:
        headers = {
            "Retry-After": str(math.ceil(plan.retry_after_ms / 1000)),
            "retry-after-ms": str(plan.retry_after_ms),
        }
        wait = f"; retry after {plan.retry_after_ms} ms"
    elif plan.retry_after is not None or plan.status == 429:
        seconds = DEFAULT_RETRY_AFTER if plan.retry_after is None else plan.retry_after
        headers = {"Retry-After": str(seconds)}
        wait = f"; retry after {seconds} s"
    return plan.status, error_body(plan.status, f"injected fault: HTTP {plan.status}{wait}"), headers


def stream_writes(
    events: Sequence[bytes], delays: Sequence[float], plan: FaultPlan | None, identity_id: str = "chatcmpl-mock"
) -> list[Write | Disconnect]:
    """The network writes of a stream of encoded events, with ``plan`` (other than ``http_error``) applied."""
    if plan is None:  # nearly every stream
        return [*map(Write, delays, events), Write(0.0, DONE)]
    writes: list[Write | Disconnect] = []
    pending_delay = 0.0
    kind = plan.type if plan else None
    split_done = False
    for count, (data, delay) in enumerate(zip(events, delays)):
        if plan and count == plan.after_chunks:
            if kind == "disconnect":
                writes.append(DISCONNECT)
                return writes
            if kind == "stall":
                pending_delay += plan.stall_ms / 1000.0
            if kind == "malformed_chunk":
                writes.append(Write(0.0, _malformed(identity_id)))
        cut = _first_multibyte(data) if kind == "split_utf8" and not split_done else None
        if cut:
            writes.append(Write(pending_delay + delay, data[:cut]))
            writes.append(Write(SPLIT_GAP_S, data[cut:]))
            split_done = True
        else:
            writes.append(Write(pending_delay + delay, data))
        pending_delay = 0.0
        if plan is not None and kind == "keepalive" and (count + 1) % plan.every_chunks == 0:
            writes.append(Write(0.0, b": ping\n\n"))
    if plan and plan.after_chunks >= len(events) and kind in ("disconnect", "stall", "malformed_chunk"):
        if kind == "disconnect":
            writes.append(DISCONNECT)
            return writes
        if kind == "stall":
            pending_delay += plan.stall_ms / 1000.0
        else:
            writes.append(Write(0.0, _malformed(identity_id)))
    if kind != "no_done":
        writes.append(Write(pending_delay, DONE))
    return writes


def body_writes(body: bytes, plan: FaultPlan | None) -> list[Write | Disconnect]:
    """A JSON body's writes: a ``disconnect`` cuts it in half, a ``stall`` delays it; stream faults do not apply."""
    if plan and plan.type == "disconnect":
        return [Write(0.0, body[: len(body) // 2]), DISCONNECT]
    delay = plan.stall_ms / 1000.0 if plan and plan.type == "stall" else 0.0
    return [Write(delay, body)]


def _malformed(identity_id: str) -> bytes:
    return (
        'data: {"id":"' + identity_id + '","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"cont\n\n'
    ).encode("utf-8")


def _first_multibyte(data: bytes) -> int | None:
    """An offset inside the first multi-byte UTF-8 character of ``data``, or ``None``."""
    for offset, byte in enumerate(data):
        if byte >= 0xC0:
            return offset + 1
    return None
