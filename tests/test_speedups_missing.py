"""Without its compiled speed-ups (orjson, httptools, uvloop, jsonschema-rs) the mock still serves the same
replies, on h11 and asyncio's own loop, and ``--version`` names each one that is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from mock_helpers import ask, stop_cli, wait_until_serving, write_conversations

from contract.core.sse import SSEEvent, parse_stream
from contract.core.validate import ContractValidator
from mockserver.serve import free_port

ROOT = Path(__file__).resolve().parent.parent
SPEED_UPS = ("orjson", "httptools", "uvloop", "jsonschema_rs")
# Setting a module to None in sys.modules makes every import of it raise ImportError, as on a machine where
# its wheel could not be installed.
WITHOUT = f"import sys; sys.modules.update(dict.fromkeys({SPEED_UPS!r})); from mockserver.cli import main; main()"


def run_without_speed_ups(*args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WITHOUT, *args], cwd=ROOT, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)}, **popen
    )  # type: ignore[call-overload]


def test_version_names_each_missing_speed_up() -> None:
    process = run_without_speed_ups("--version", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    for name in ("orjson missing", "httptools missing", "uvloop missing", "jsonschema-rs missing"):
        assert name in out, out
    assert "h11" in out and "slower" in out


def test_serves_the_contract_without_speed_ups(tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "c")
    port = free_port()
    process = run_without_speed_ups(
        "--fixtures",
        str(folder),
        "--port",
        str(port),
        "--no-delay",
        "--log-level",
        "warning",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    validator = ContractValidator()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process, 20)
        with httpx.Client(base_url=url, timeout=10) as http:
            plain = http.post("/v1/chat/completions", json=ask("Say hello.", stream=False))
            assert plain.status_code == 200 and validator.validate_response(200, plain.json()) == []
            assert plain.json()["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
            streamed = http.post("/v1/chat/completions", json=ask("Say hello.", stream=True))
            items, problems = parse_stream(streamed.content)
            events = [item for item in items if isinstance(item, SSEEvent)]
            assert problems == [] and events[-1].data == "[DONE]" and len(events) > 3
            for event in events[:-1]:
                assert validator.validate_event(json.loads(event.data)) == []
            refused = http.post(
                "/v1/chat/completions", content=b'{"messages": [', headers={"Content-Type": "application/json"}
            )
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_json"
    finally:
        stop_cli(process)
