"""Settings check themselves wherever they are made: in code, by the command line, by the pytest factory,
and again in each worker process from JSON."""

from __future__ import annotations

import json

import pytest
from mock_helpers import plugin_args

from mockserver import Pacing, Settings, create_app
from mockserver.settings import SettingsError

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    ("given", "field", "reason"),
    [
        ({"fault_rate": 5.0}, "fault_rate", "must be between 0 and 1, got 5"),
        ({"fault_rate": float("nan")}, "fault_rate", "must be between 0 and 1, got nan"),
        ({"fault_rate": "0.5"}, "fault_rate", "must be between 0 and 1, got '0.5'"),
        ({"journal_size": 0}, "journal_size", "must be at least 1, got 0"),
        ({"max_body": -1}, "max_body", "must be at least 1, got -1"),
        ({"max_body": 1.5}, "max_body", "must be at least 1, got 1.5"),
        ({"seed": "7"}, "seed", "must be a whole number, got '7'"),
        ({"seed": True}, "seed", "must be a whole number, got True"),
        ({"no_delay": "yes"}, "no_delay", "must be true or false, got 'yes'"),
        ({"watch": 1}, "watch", "must be true or false, got 1"),
        ({"fallback": "auto"}, "fallback", "must be true, false or None, got 'auto'"),
        ({"fault_types": ()}, "fault_types", "no fault types given"),
        ({"fault_types": ("http_error", "meteor")}, "fault_types", "unknown fault type 'meteor'"),
        ({"fault_types": "http_error"}, "fault_types", "must be a list of names, got 'http_error'"),
        ({"allowed_hosts": ("bad/host",)}, "allowed_hosts", "takes a host name"),
        ({"watch_interval": 0}, "watch_interval", "must be a number of seconds above 0, got 0"),
        ({"watch_interval": float("inf")}, "watch_interval", "must be a number of seconds above 0, got inf"),
        ({"pacing": 3}, "pacing", "must be a Pacing or a mapping of its fields, got 3"),
    ],
)
def test_a_bad_value_is_refused_where_the_settings_are_made(given: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings(**given)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert reason in refused.value.reason, refused.value.reason
    assert isinstance(refused.value, ValueError)


def test_create_app_cannot_be_given_settings_that_would_misbehave_later() -> None:
    with pytest.raises(SettingsError) as refused:
        create_app(None, Settings(fault_rate=5.0, journal_size=0, max_body=-1))
    assert refused.value.field in {"fault_rate", "journal_size", "max_body"}


def test_a_pacing_out_of_range_is_refused_too() -> None:
    with pytest.raises(ValueError, match="ttft_ms must be between"):
        Settings(pacing={"ttft_ms": -1})  # type: ignore[arg-type]


def test_lists_and_mappings_are_kept_as_the_frozen_values_so_json_makes_the_same_settings() -> None:
    settings = Settings(
        seed=4,
        pacing={"ttft_ms": 10, "tokens_per_second": 50, "jitter": 0.1},  # type: ignore[arg-type]
        fault_rate=0.25,
        fault_types=["http_error", "stall"],  # type: ignore[arg-type]
        allowed_hosts=["mock.localhost"],  # type: ignore[arg-type]
        watch=True,
        watch_interval=0.2,
    )
    assert settings.pacing == Pacing(ttft_ms=10, tokens_per_second=50, jitter=0.1)
    assert settings.fault_types == ("http_error", "stall") and settings.allowed_hosts == ("mock.localhost",)
    assert Settings(**json.loads(json.dumps(settings.as_json()))) == settings


FACTORY_TESTS = """
def test_unknown_setting(mockserver_factory):
    mockserver_factory(fault_rat=0.5)


def test_bad_value(mockserver_factory):
    mockserver_factory(journal_size=0)


def test_every_field_is_taken(mockserver_factory):
    server = mockserver_factory(max_body=200, allowed_hosts=["mock.localhost"], watch=True, watch_interval=0.2)
    import httpx
    big = httpx.post(server.url + "/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "x" * 300}]})
    assert big.status_code == 400 and big.json()["error"]["code"] == "body_too_large"
"""


def test_the_pytest_factory_takes_every_setting_and_refuses_a_bad_one_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_factory=FACTORY_TESTS)
    plugin = plugin_args("chatstream-mock", "mockserver.pytest_plugin")
    result = pytester.runpytest_subprocess(*plugin, "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*mockserver: no setting 'fault_rat' (the settings: allowed_hosts, fallback*"])
    result.stdout.fnmatch_lines(["*mockserver: journal_size must be at least 1, got 0*"])
    assert "Traceback" not in result.stdout.str() and "During handling" not in result.stdout.str()
