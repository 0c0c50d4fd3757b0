"""Schemathesis, a schema-driven tool we do not write, finds nothing wrong with the mock.

It reads the contract as ``contract-check --export-spec 3.2`` writes it: before OpenAPI
3.2 a ``text/event-stream`` schema cannot say that it describes each event's data, and
Schemathesis fails every correct stream with ``"id" is a required property``. The mock is
the real server on a loopback port; Schemathesis runs as its users run it, from the
command line, with a fixed seed so that the run is the same every time.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mock_helpers import MockServers, RunningMock

pytest.importorskip("schemathesis")

ROOT = Path(__file__).resolve().parent.parent
SEED = "1"
MAX_EXAMPLES = "50"  # about 500 requests over the examples, coverage and fuzzing phases

# positive_data_acceptance expects a 2xx for every schema-valid request. The mock, as a real
# server does, refuses some of them by rules that span several fields (a tool_choice naming a
# tool that is not offered, a tool's parameters or a response schema that is not a usable
# JSON Schema). OpenAPI cannot state such rules in a schema, so the contract lists them under
# the 400 response's x-refusals, which Schemathesis does not read.
# tests/test_mock_accepts_the_contract.py holds every such 400 to that list instead.
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.fixture(scope="module")
def mock(module_mock_server_factory: MockServers) -> RunningMock:
    """The bundled fixtures (with the fallback for any other request) and no pacing."""
    return module_mock_server_factory(None, no_delay=True, seed=0, journal_size=100_000)


@pytest.mark.slow
def test_schemathesis_finds_no_failure_on_the_exported_contract(mock: RunningMock, tmp_path: Path) -> None:
    document = tmp_path / "openapi-3.2.yaml"
    export = subprocess.run(
        [sys.executable, "-m", "contract.cli", "--export-spec", "3.2", "-o", str(document)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr

    # cwd is tmp_path: Schemathesis and Hypothesis keep their caches (.schemathesis, .hypothesis)
    # in the working directory, and --generation-database none stores no examples at all.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(document),
            "--url",
            f"{mock.url}/v1",
            "--seed",
            SEED,
            "--max-examples",
            MAX_EXAMPLES,
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--exclude-checks",
            EXCLUDED_CHECKS,
            "--request-timeout",
            "10",
            "--suppress-health-check",
            "too_slow",  # timing on a loaded CI machine is not about the contract
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr

    if done.returncode != 0:
        pytest.fail(f"schemathesis exited with {done.returncode}:\n{output}", pytrace=False)
    counts = re.search(r"^\s*(\d+) generated, (\d+) passed\s*$", output, re.MULTILINE)
    if counts is None or counts[1] != counts[2] or int(counts[1]) == 0:
        pytest.fail(f"schemathesis did not report every generated case as passed:\n{output}", pytrace=False)
    assert "Specification:    Open API 3.2.0" in output, output

    streamed = [
        entry
        for entry in mock.app.state.mock.journal
        if entry["status"] == 200 and isinstance(entry["body"], dict) and entry["body"].get("stream", True) is not False
    ]
    assert streamed, "no request got a streamed reply: the stream's itemSchema was never exercised"
