"""Hostile input against the mock's whole HTTP surface: no 5xx, no slow answer, and it keeps serving.

Hypothesis draws methods, paths, headers and bodies: random bytes, random JSON (deep, huge numbers,
lone surrogates, NaN), truncated and oversized bodies, and schema-shaped requests with odd values.
The default run is short; ``pytest tests/test_fuzz_http.py --fuzz-examples 20000`` is the long one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_helpers import MockServers

PATHS = [
    "/chat/completions",
    "/v1/chat/completions",
    "/health",
    "/__mock/requests",
    "/__mock/fixtures",
    "/__mock/fixtures/hello",
    "/__mock/reset",
    "/v1/models",
    "/models",
    "/",
    "/v1",
    "/v2/chat/completions",
    "/chat/completions/",
    "/%00",
    "/__mock/fixtures/..%2F..%2Fetc",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
HEADER_NAMES = [
    "content-type",
    "accept",
    "authorization",
    "x-mock-pacing",
    "x-api-key",
    "user-agent",
    "x-anything",
    "content-encoding",
]  # not x-mock-fault: an injected 5xx is the point of that one
MAX_SECONDS = 5.0  # any single answer; the server is on no-delay
HEADER_VALUES = st.from_regex(r"[!-~]([ -~]{0,38}[!-~])?", fullmatch=True)  # what an HTTP client will send


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(),
        st.sampled_from(["\ud800", "\udfff", "a\x00b"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=20,
    )


def _request_like() -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool", "robot"]), "content": _json_values()}
    )
    return st.fixed_dictionaries(
        {"messages": st.lists(message, max_size=3)},
        optional={
            "model": _json_values(),
            "stream": _json_values(),
            "tools": _json_values(),
            "tool_choice": _json_values(),
            "modalities": _json_values(),
            "audio": _json_values(),
            "response_format": _json_values(),
        },
    )


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


BODIES = st.one_of(
    st.binary(max_size=200),
    _json_values().map(_dump),
    _request_like().map(_dump),
    _request_like().map(_dump).map(lambda raw: raw[: len(raw) // 2]),  # truncated
    st.integers(1, 30_000).map(lambda depth: b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"),
    st.integers(4_000, 100_000).map(lambda digits: b'{"messages": [], "model": ' + b"7" * digits + b"}"),
    st.sampled_from(
        [
            b'{"messages": [], "model": "\\ud800"}',
            b'{"messages": [], "x": NaN}',
            b'{"messages": [], "x": 1e999999}',
            b"\xef\xbb\xbf{}",
            b"\x00" * 64,
        ]
    ),
)


@pytest.fixture(scope="module")
def mock(module_mock_server_factory: MockServers) -> str:
    return module_mock_server_factory(None, no_delay=True, max_body=200_000, log_level="critical").url


@pytest.mark.slow
def test_the_http_surface_never_answers_5xx_and_keeps_serving(mock: str, request: pytest.FixtureRequest) -> None:
    examples = request.config.getoption("--fuzz-examples")
    tried = {"n": 0}

    @settings(
        max_examples=examples, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(
        method=st.sampled_from(METHODS),
        path=st.sampled_from(PATHS),
        headers=st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=3),
        body=BODIES,
    )
    def probe(method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        tried["n"] += 1
        with httpx.Client(base_url=mock, timeout=MAX_SECONDS * 2) as client:
            started = time.monotonic()
            response = client.request(method, path, headers=headers, content=body if method != "GET" else None)
            response.read()
            elapsed = time.monotonic() - started
        assert response.status_code < 500, (method, path, headers, body[:200], response.text[:300])
        assert elapsed < MAX_SECONDS, (method, path, elapsed)

    probe()
    with httpx.Client(base_url=mock, timeout=5) as client:
        assert client.get("/health").json()["status"] == "ok"
        journal = client.get("/__mock/requests")
        assert journal.status_code == 200, journal.text[:300]
    print(f"fuzz: {tried['n']} inputs")  # the note quotes this for the long run
