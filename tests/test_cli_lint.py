"""``contract-check --lint`` as a user runs it: a real process, its exit code and its output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "data" / "seed-openapi.yaml"


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract.cli", "--lint", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def seed_run() -> subprocess.CompletedProcess[str]:
    return lint("--spec", str(SEED))


SEED_DEFECTS = [
    (
        "oneof-overlap",
        "#/components/schemas/ChatCompletionRequest/properties/messages/items/oneOf",
        '{"role":"system","content":""}',
    ),
    ("unsatisfiable", "#/components/schemas/AssistantMessage/properties/role/enum", '{"role":"assistant"'),
    ("oneof-overlap", "#/paths/~1chat~1completions/post/responses/200/content/application~1json/schema/oneOf", "{}"),
    (
        "ambiguous-response",
        "#/paths/~1chat~1completions/post/responses/200/content/application~1json",
        '"choices":[{"delta":',
    ),
    ("single-tool-call", "#/components/schemas/AssistantMessage/properties/tool_calls", '[{"id":"call_1"'),
    ("single-tool-call", "#/components/schemas/ResponseMessage/properties/tool_calls", '[{"id":"call_1"'),
    ("null-forbidden", "#/components/schemas/Choice/properties/finish_reason", '{"finish_reason":null}'),
    ("null-forbidden", "#/components/schemas/DeltaChoice/properties/finish_reason", '{"finish_reason":null}'),
    ("null-forbidden", "#/components/schemas/ResponseMessage/properties/content", '{"content":null}'),
    ("null-forbidden", "#/components/schemas/ResponseMessage/properties/refusal", '{"refusal":null}'),
    ("null-forbidden", "#/components/schemas/AssistantMessage/properties/content", '"content":null'),
    ("null-forbidden", "#/components/schemas/ChatCompletionChunk/properties/usage", '{"usage":null}'),
    ("no-error-responses", "#/paths/~1chat~1completions/post/responses", '{"status":400'),
    ("stream-not-documented", "#/paths/~1chat~1completions/post/responses", '"stream":true'),
]


def test_seed_exits_1(seed_run):
    assert seed_run.returncode == 1, seed_run.stderr
    assert seed_run.stderr == ""
    assert seed_run.stdout.splitlines()[-1] == f"{SEED}: 14 errors, 3 warnings"


@pytest.mark.parametrize(
    ("rule", "location", "witness"),
    SEED_DEFECTS,
    ids=[f"{rule}:{'/'.join(where.split('/')[-3:])}" for rule, where, _ in SEED_DEFECTS],
)
def test_seed_defect_printed_with_location_and_witness(seed_run, rule, location, witness):
    lines = [line for line in seed_run.stdout.splitlines() if line.startswith(f"error: {rule} at {location}: ")]
    assert len(lines) == 1, seed_run.stdout
    assert witness in lines[0].split("; witness: ", 1)[1]


def test_seed_unused_schema_is_a_warning(seed_run):
    assert "warning: unused-schema at #/components/schemas/Delta: " in seed_run.stdout


@pytest.mark.parametrize(
    ("param", "witness"),
    [
        ("tool_choice", '{"messages":[],"tool_choice":"required"}'),
        ("tool_choice.function.name", '{"messages":[],"tool_choice":{}}'),
    ],
)
def test_seed_refusals_the_mock_makes_are_warnings(seed_run, param, witness):
    """The seed has no 400 response, so the mock's refusals of valid requests are undocumented."""
    body = "#/paths/~1chat~1completions/post/requestBody/content/application~1json/schema"
    lines = [
        line
        for line in seed_run.stdout.splitlines()
        if line.startswith(f"warning: undocumented-refusal at {body}: ") and f"param {param!r} (" in line
    ]
    assert len(lines) == 1, seed_run.stdout
    assert "code 'invalid_tool_choice'" in lines[0]
    assert lines[0].endswith(f"; witness: {witness}")


def test_structure_error_exits_1(tmp_path):
    """The defect the contract used to have: a description inside the 200 reply's Media Type object."""
    reply = (
        "            application/json:\n              schema:\n"
        '                $ref: "#/components/schemas/ChatCompletionResponse"\n'
    )
    text = (ROOT / "openapi.yaml").read_text(encoding="utf-8")
    assert text.count(reply) == 1
    path = tmp_path / "described.yaml"
    described = reply.replace("schema:", "description: The whole reply.\n              schema:")
    path.write_text(text.replace(reply, described), encoding="utf-8")
    run = lint("--spec", str(path))
    assert run.returncode == 1 and run.stderr == ""
    assert run.stdout.splitlines() == [
        "error: openapi-structure at #/paths/~1chat~1completions/post/responses/200/content/application~1json: "
        "additional property 'description' is not allowed in a Media Type object",
        "warning: unused-schema at #/components/schemas/Delta: schema 'Delta' is never used by an operation",
        f"{path}: 1 error, 1 warning",
    ]


def test_seed_output_is_the_same_each_run(seed_run):
    assert lint("--spec", str(SEED)).stdout == seed_run.stdout


@pytest.mark.parametrize("args", [(), ("--spec", str(ROOT / "openapi.yaml"))], ids=["bundled", "explicit"])
def test_project_contract_exits_0(args):
    run = lint(*args)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "error:" not in run.stdout
    assert run.stdout.splitlines()[-1].endswith("openapi.yaml: 0 errors, 1 warning")


def assert_one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 2
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("contract-check: error: ")
    return lines[0]


def test_missing_file(tmp_path):
    line = assert_one_line_error(lint("--spec", str(tmp_path / "nope.yaml")))
    assert line.endswith("nope.yaml: no such file")


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("openapi: 3.0.0\ninfo:\n  title: x\n   bad: indent\n", encoding="utf-8")
    line = assert_one_line_error(lint("--spec", str(path)))
    assert re.search(r"broken\.yaml:\d+:\d+: YAML syntax error", line), line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('swagger: "2.0"\ninfo: {title: x, version: "1"}\npaths: {}\n', "Swagger 2.0 is not supported"),
        ("- just\n- a list\n", "not an OpenAPI document"),
        ("title: hello\n", "not an OpenAPI 3 document"),
    ],
    ids=["swagger-2", "list", "mapping-without-openapi"],
)
def test_not_openapi(tmp_path, text, expected):
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8")
    assert expected in assert_one_line_error(lint("--spec", str(path)))


def test_ref_to_nowhere(tmp_path):
    text = SEED.read_text(encoding="utf-8").replace(
        '$ref: "#/components/schemas/Tool"', '$ref: "#/components/schemas/Tools"'
    )
    path = tmp_path / "dangling.yaml"
    path.write_text(text, encoding="utf-8")
    line = assert_one_line_error(lint("--spec", str(path)))
    assert "$ref '#/components/schemas/Tools'" in line and "resolves nowhere" in line


def test_ref_to_nowhere_in_an_unused_schema_is_a_finding(tmp_path):
    text = SEED.read_text(encoding="utf-8").replace(
        "    Delta:\n      type: object\n",
        '    Delta:\n      type: object\n      additionalProperties:\n        $ref: "#/components/schemas/Gone"\n',
    )
    path = tmp_path / "orphan.yaml"
    path.write_text(text, encoding="utf-8")
    run = lint("--spec", str(path))
    assert run.returncode == 1 and run.stderr == ""
    assert (
        "error: dangling-ref at #/components/schemas/Delta/additionalProperties/$ref: "
        "$ref '#/components/schemas/Gone' resolves nowhere"
    ) in run.stdout
