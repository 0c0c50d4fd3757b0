"""Every request the contract calls valid gets a reply from the mock, or a refusal the contract lists.

A schema-valid request refused for a reason the document does not state is what Schemathesis and
other tools report as "valid data rejected"; the mock must never be that server. The requests come
from the request schema alone (hypothesis-jsonschema), not from the project's realistic strategies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mock_helpers import MockServers

from contract.core.spec import load_spec
from contract.core.sse import SSEEvent, parse_stream
from contract.core.validate import JSON, ContractValidator
from contract.lint.refusals import documented_refusals, normalise_param
from contract.strategies import schema_requests

SPEC = load_spec(ROOT / "openapi.yaml")
REQUESTS = schema_requests(SPEC, SPEC.operation())


def _listed_refusals() -> set[tuple[str | None, str | None]]:
    return documented_refusals(SPEC.raw["components"]["responses"]["BadRequest"])  # the operation's 400


@pytest.fixture(scope="module")
def mock(module_mock_server_factory: MockServers) -> Iterator[httpx.Client]:
    server = module_mock_server_factory(None, no_delay=True, seed=7)
    with httpx.Client(base_url=server.url + "/v1", timeout=30) as client:
        yield client


@pytest.mark.usefixtures("reused_strategies")
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(body=REQUESTS, data=st.data())
def test_schema_valid_requests_are_answered_or_refused_as_documented(
    mock: httpx.Client, validator: ContractValidator, body: Any, data: Any
) -> None:
    assert validator.validate_request(body) == []
    response = mock.post("/chat/completions", json=body)
    if response.status_code == 400:
        error = response.json()["error"]
        assert (error["code"], normalise_param(error["param"])) in _listed_refusals(), error
        assert validator.validate_response(400, response.json(), JSON) == []
        return
    assert response.status_code == 200, response.text
    if body.get("stream", True):
        items, problems = parse_stream(response.content)
        events = [item for item in items if isinstance(item, SSEEvent)]
        assert problems == [] and events[-1].data == "[DONE]"
        for event in events[:-1]:
            assert validator.validate_event(json.loads(event.data)) == [], event.data
    else:
        assert validator.validate_response(200, response.json(), JSON) == []


def test_the_refusals_the_contract_lists_do_happen(mock: httpx.Client) -> None:
    """The list is not a blanket excuse: each listed refusal is one the mock really makes."""
    function = {"name": "f", "parameters": {"type": "object"}}
    cases = {
        ("invalid_tool_choice", "tool_choice"): {"tool_choice": "required"},
        ("invalid_function_parameters", "tools[].function.parameters"): {
            "tools": [{"type": "function", "function": {**function, "parameters": {"type": 5}}}]
        },
        ("invalid_json_schema", "response_format.json_schema.schema"): {
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}
        },
        ("unsupported_audio_format", "audio.format"): {
            "modalities": ["text", "audio"],
            "audio": {"voice": "alloy", "format": "mp3"},
        },
        ("too_many_tools", "tools"): {
            "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]
        },
    }
    assert set(cases) == _listed_refusals()
    for (code, param), extra in cases.items():
        error = mock.post(
            "/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "stream": False, **extra}
        ).json()["error"]
        assert (error["code"], normalise_param(error["param"])) == (code, param)
