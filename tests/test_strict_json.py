"""One strict reading of JSON, worded by each reader: a request body's 400 and a fixture's file:line."""

from __future__ import annotations

import pytest

from mockserver.fixtures import FixtureError, fixture_from_dict
from mockserver.request_body import BodyProblem, parse_request_json
from mockserver.strict_json import NonFiniteNumber, strict_json_loads


@pytest.mark.parametrize(
    ("text", "written", "constant"),
    [("[NaN]", "NaN", True), ("[-Infinity]", "-Infinity", True), ("[1e999]", "1e999", False)],
)
def test_what_strict_parsers_refuse_is_refused_with_what_was_written(text: str, written: str, constant: bool) -> None:
    with pytest.raises(NonFiniteNumber) as caught:
        strict_json_loads(text)
    assert (caught.value.text, caught.value.constant) == (written, constant)


def test_finite_numbers_and_the_callers_integer_hook_pass_through() -> None:
    assert strict_json_loads('{"a": [1.5, -2e3, 7]}', parse_int=lambda digits: f"int {digits}") == {
        "a": [1.5, -2000.0, "int 7"]
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": NaN}', "the body has NaN, which is not JSON"),
        (b'{"a": -Infinity}', "the body has -Infinity, which is not JSON"),
        (b'{"a": 1e999}', "the body has the number 1e999, which is out of range for JSON"),
    ],
)
def test_a_request_body_says_it_in_the_words_of_a_400(body: bytes, reason: str) -> None:
    with pytest.raises(BodyProblem) as caught:
        parse_request_json(body)
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [('{"a": NaN}', "NaN is not JSON"), ('{"a": 1e999}', "the number 1e999 is out of range")],
)
def test_a_fixture_says_it_where_the_arguments_are(arguments: str, reason: str) -> None:
    turn = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]}
    with pytest.raises(FixtureError) as caught:
        fixture_from_dict({"conversation": [{"role": "user", "content": "hi"}, turn]}, name="n")
    assert str(caught.value) == (
        f"<python>: conversation[1].tool_calls[0].function.arguments: arguments are not strict JSON: {reason}, "
        "which client parsers refuse"
    )
