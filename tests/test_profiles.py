"""Profiles: the overlay engine, the bundled dialects, and the options every tool takes for them.

Bad inputs handled here: an unknown profile name, an overlay file that does not exist, one that is not
YAML, one that is not an Overlay 1.0 document, an action with both or neither of update and remove,
a target that is not JSONPath, a target that selects nothing; each is one line and exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mock_helpers import REPOSITORY, MockServers, serving_cli

from contract.core.dialect import Dialect
from contract.core.overlay import OverlayError, apply_overlay, parse_overlay
from contract.core.profiles import BUNDLED, Profile, profile
from contract.core.spec import SpecError, load_spec
from contract.core.validate import ContractValidator
from mockserver.serve import free_port


def overlay(*actions: dict) -> dict:
    return {"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": list(actions)}


# -- the overlay engine ---------------------------------------------------------------------------


def test_update_merges_objects_appends_to_arrays_and_replaces_values() -> None:
    document = {"a": {"b": 1, "c": {"d": 2}}, "list": [1], "s": "old"}
    result = apply_overlay(
        document,
        parse_overlay(
            overlay(
                {"target": "$.a", "update": {"c": {"e": 3}, "f": 4}},
                {"target": "$.list", "update": 2},
                {"target": "$.s", "update": "new"},
            ),
            "o.yaml",
        ),
    )
    assert result == {"a": {"b": 1, "c": {"d": 2, "e": 3}, "f": 4}, "list": [1, 2], "s": "new"}
    assert document == {"a": {"b": 1, "c": {"d": 2}}, "list": [1], "s": "old"}, "the input is left as it was"


def test_remove_deletes_every_selected_node_and_filters_select_by_value() -> None:
    document = {"required": ["a", "content", "b", "content"], "x": {"y": 1, "z": 2}}
    result = apply_overlay(
        document,
        parse_overlay(
            overlay({"target": "$.required[?@ == 'content']", "remove": True}, {"target": "$.x.y", "remove": True}),
            "o",
        ),
    )
    assert result == {"required": ["a", "b"], "x": {"z": 2}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"overlay": "2.0.0", "info": {"title": "t"}, "actions": [{}]}, "not an Overlay 1.0 document"),
        ({"overlay": "1.0.0", "info": {"title": "t"}, "actions": []}, "'actions' must be a non-empty list"),
        (overlay({"target": "$.a", "update": {}, "remove": True}), "exactly one of 'update' and 'remove: true'"),
        (overlay({"target": "$.a"}), "exactly one of 'update' and 'remove: true'"),
        (overlay({"target": "a.b", "update": {}}), "must be a JSONPath query starting with '$'"),
        (overlay({"target": "$[?", "update": {}}), "is not valid JSONPath"),
        (overlay({"target": "$.a", "update": {}, "bogus": 1}), "unknown key 'bogus'"),
        ([1, 2], "not an overlay"),
    ],
)
def test_a_malformed_overlay_is_one_line_naming_the_action(data: object, message: str) -> None:
    with pytest.raises(OverlayError) as caught:
        parse_overlay(data, "my.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("my.yaml") and "\n" not in str(caught.value)


def test_a_target_that_selects_nothing_is_refused() -> None:
    with pytest.raises(OverlayError, match=r"my.yaml: action 1 \(\$.nope\): the target selects nothing"):
        apply_overlay({"a": 1}, parse_overlay(overlay({"target": "$.nope", "update": {"b": 1}}), "my.yaml"))


# -- the bundled profiles -------------------------------------------------------------------------


def test_the_seed_profile_is_the_contract_unchanged() -> None:
    assert load_spec().raw == load_spec(profile="seed").raw
    assert Dialect.of(load_spec()) == Dialect(label="seed", stream_default=True)


def test_the_openai_profile_speaks_the_dialect_clients_send() -> None:
    seed, openai = ContractValidator(load_spec()), ContractValidator(load_spec(profile="openai"))
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": [{"type": "file", "file": {"file_data": "JVBERi0=", "filename": "a.pdf"}}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {}}]},
            {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "18"}]},
        ],
        "response_format": {"type": "json_object"},
        "stream_options": {"include_usage": True},
        "n": 2,
        "temperature": None,
        "stop": ["\n"],
        "reasoning_effort": "low",
        "service_tier": "auto",
        "metadata": {"team": "a"},
    }
    assert openai.validate_request(request) == []
    assert seed.validate_request(request), "the seed contract refuses the OpenAI dialect's shapes"
    assert openai.validate_request({**request, "n": 0}), "the SDK's bounds hold: n is at least 1"
    assert Dialect.of(openai.spec) == Dialect(
        label="openai", stream_default=False, usage_when_asked=True, takes_n=True, takes_logprobs=True
    )


def test_a_users_overlay_goes_on_top_of_a_profile(tmp_path: Path) -> None:
    mine = tmp_path / "my-server.yaml"
    mine.write_text(
        json.dumps(
            overlay(
                {
                    "target": "$.components.schemas.ChatCompletionRequest.properties",
                    "update": {"house_style": {"type": "string", "enum": ["terse"]}},
                }
            )
        ),
        encoding="utf-8",
    )
    spec = load_spec(profile=profile("openai", [mine]))
    assert spec.profile.label == "openai + my-server.yaml"
    assert spec.profile.options() == ["--profile", "openai", "--overlay", str(mine)]
    validator = ContractValidator(spec)
    request = {"messages": [{"role": "user", "content": "hi"}]}
    assert validator.validate_request({**request, "house_style": "terse"}) == []
    assert validator.validate_request({**request, "house_style": "chatty"})


def test_an_unknown_profile_and_a_broken_overlay_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"unknown profile 'openapi'; the bundled profiles are openai, seed"):
        load_spec(profile="openapi")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions:\n  - target: $.nowhere\n    remove: true\n"
    )
    with pytest.raises(SpecError, match=r"bad.yaml: action 1 \(\$.nowhere\): the target selects nothing"):
        load_spec(profile=Profile("seed", (bad,)))
    assert sorted(BUNDLED) == ["openai", "seed"]


# -- the command lines ----------------------------------------------------------------------------


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=60
    )


def _bad_overlays(tmp_path: Path) -> list[tuple[list[str], str]]:
    not_yaml = tmp_path / "not-yaml.yaml"
    not_yaml.write_text("actions: [unclosed\n", encoding="utf-8")
    not_overlay = tmp_path / "not-overlay.yaml"
    not_overlay.write_text("openapi: 3.0.0\n", encoding="utf-8")
    return [
        (["--profile", "nope"], "unknown profile 'nope'"),
        (["--overlay", str(tmp_path / "missing.yaml")], "missing.yaml does not exist"),
        (["--overlay", str(not_yaml)], "YAML syntax error"),
        (["--overlay", str(not_overlay)], "not an Overlay 1.0 document"),
    ]


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("contract.cli", ["--lint"]),
        ("contract.cli", ["--export-spec", "3.2"]),
        ("contract.cli", ["http://127.0.0.1:9/v1"]),
        ("mockserver.cli", ["--port", "0"]),
        ("mockserver.cli", ["record", "--upstream", "http://127.0.0.1:9/v1", "--port", "0"]),
    ],
)
def test_every_command_refuses_a_bad_profile_in_one_line(module: str, extra: list[str], tmp_path: Path) -> None:
    for options, message in _bad_overlays(tmp_path):
        args = [*extra, *options]
        if "record" in extra:
            args += ["--fixtures", str(tmp_path / "recorded")]
        done = _run(module, *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_lint_and_export_take_the_profile() -> None:
    lint = _run("contract.cli", "--lint", "--profile", "openai")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.splitlines()[-1].endswith("openapi.yaml (profile openai): 0 errors, 1 warning")
    exported = _run("contract.cli", "--export-spec", "3.2", "--profile", "openai")
    assert exported.returncode == 0 and "DeveloperMessage" in exported.stdout and "json_object" in exported.stdout
    assert "DeveloperMessage" not in _run("contract.cli", "--export-spec", "3.2").stdout


def test_the_mock_names_its_profile_on_the_start_up_line() -> None:
    port = free_port()
    with serving_cli("--port", str(port), "--no-delay", "--profile", "openai", seconds=30) as cli:
        line = cli.banner
        assert f"http://127.0.0.1:{port}/v1" in line and "profile openai" in line


# -- the checker under each profile ---------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_mock(module_mock_server_factory: MockServers) -> str:
    return module_mock_server_factory(None, no_delay=True, profile="openai").url + "/v1"


def test_the_checker_passes_an_openai_server_under_the_openai_profile(openai_mock: str, tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    done = _run(
        "contract.cli", openai_mock, "--profile", "openai", "--seed", "3", "--max-examples", "10", "--json", str(report)
    )
    assert done.returncode == 0, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == lines[-1] == "PASSED"
    assert "profile openai" in lines[1] and "seed 3" in lines[1]
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["profile"] == "openai" and result["ok"] and result["hint"] is None
    assert "--seed 3 --profile openai --max-examples 10" in lines[-2], "the rerun line keeps the profile"


def test_the_default_run_against_an_openai_server_opens_with_the_profile_hint(openai_mock: str) -> None:
    done = _run("contract.cli", openai_mock, "--seed", "3", "--max-examples", "10")
    assert done.returncode == 1
    verdict, hint = done.stdout.splitlines()[:2]
    assert verdict == "FAILED: content_type_matches"
    assert hint.startswith("hint: every content_type_matches failure (") and "--profile openai" in hint
    assert "is a JSON reply to a request without `stream`" in hint


def test_a_usage_chunk_nobody_asked_for_fails_under_the_openai_profile(mock_server_factory: MockServers) -> None:
    """The seed mock sends its usage chunk on every stream: right for the seed, wrong for OpenAI's clients."""
    with mock_server_factory(None, no_delay=True) as seed_mock:
        done = _run(
            "contract.cli",
            seed_mock.url + "/v1",
            "--profile",
            "openai",
            "--checks",
            "usage_chunk_as_asked,chunks_valid",
            "--seed",
            "5",
            "--max-examples",
            "10",
        )
    assert done.returncode == 1, done.stdout[-2000:]
    assert "FAILED: usage_chunk_as_asked" in done.stdout
    assert "did not set stream_options.include_usage; a client that reads chunk.choices[0] fails on it" in done.stdout
