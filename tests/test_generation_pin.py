"""hypothesis-jsonschema 0.23.1 breaks on object schemas from Hypothesis 6.170.10 on
("'many' object has no attribute 'more'"): generate from real object schemas of the
contract so a moved pin fails here, first, with that message."""

from __future__ import annotations

import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

from contract.core.validate import ContractValidator
from contract.strategies import bounded_schema, reused_schema_strategies, schema_strategy

REQUEST = "#/components/schemas/ChatCompletionRequest"
SMALL_OBJECTS = ["#/components/schemas/Usage", "#/components/schemas/ToolCall", "#/components/schemas/Error"]


def test_installed_hypothesis_is_below_the_break():
    version = tuple(int(p) for p in hypothesis.__version__.split(".")[:3])
    assert version < (6, 170, 10), f"hypothesis {hypothesis.__version__}: see the pin in pyproject.toml"


def test_generated_requests_validate(validator: ContractValidator):
    """Through the library's builder as contract-check calls it: bounded, each strategy built once."""
    schema = bounded_schema(validator.spec.inline(validator.spec.resolve(REQUEST)))
    seen: list[dict] = []

    @settings(max_examples=8, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(schema_strategy(schema))
    def check(request: dict) -> None:
        assert validator.validate_request(request) == []
        seen.append(request)

    with reused_schema_strategies():
        check()
    assert seen and all("messages" in r for r in seen)


def test_generated_small_objects_validate(validator: ContractValidator):
    for pointer in SMALL_OBJECTS:
        _check_generated(validator, pointer)


def _check_generated(validator: ContractValidator, pointer: str) -> None:
    @settings(max_examples=10, deadline=None, database=None, derandomize=True)
    @given(from_schema(validator.spec.inline(validator.spec.resolve(pointer))))
    def check(instance: dict) -> None:
        assert isinstance(instance, dict)
        assert validator.validate_at(pointer, instance) == []

    check()
