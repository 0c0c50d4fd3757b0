"""Each schema's strategy is built once per process: draws stop rebuilding it, and draw the same values."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, seed, settings

from contract.compat.hypothesis_jsonschema import schema_builder, set_schema_builder
from contract.core.spec import load_spec
from contract.strategies import reused_schema_strategies, schema_requests

SPEC = load_spec()
OPERATION = SPEC.operation()


def _draws(examples: int = 12) -> list[Any]:
    """The bodies a seeded test draws from the request schema."""
    drawn: list[Any] = []

    @seed(4242)
    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(schema_requests(SPEC, OPERATION))
    def record(body: Any) -> None:
        drawn.append(body)

    record()
    return drawn


def test_the_same_seed_draws_the_same_bodies_with_and_without_reuse() -> None:
    plain = _draws()
    with reused_schema_strategies():
        reused = _draws()
        again = _draws()
    assert plain == reused == again


def test_a_second_run_of_draws_builds_no_strategy_again() -> None:
    shipped = schema_builder()
    builds: list[Any] = []

    def counted(schema: Any, **options: Any) -> Any:
        builds.append(schema)
        return shipped(schema, **options)

    set_schema_builder(counted)  # beneath the memoising wrapper: only real builds are counted
    try:
        with reused_schema_strategies():
            _draws()
            builds.clear()
            _draws()
    finally:
        set_schema_builder(shipped)
    assert builds == []


def test_the_library_is_left_as_it_ships_outside_the_block() -> None:
    shipped = schema_builder()
    with reused_schema_strategies():
        with reused_schema_strategies():  # re-entrant
            assert schema_builder() is not shipped
        assert schema_builder() is not shipped
    assert schema_builder() is shipped
