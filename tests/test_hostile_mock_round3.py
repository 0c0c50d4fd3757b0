"""Hostile inputs to the mock, third round: audio paths, request heads, fixture names and values,
symlinked folders, a broken state file under ``--workers``, and how a planned fault is logged.

Each is refused with one clear line (``file:line: what``, exit 2 at start-up, or an Error body at run
time) or handled as documented, never with a traceback, a silent skip or memory that grows with the input.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import (
    LogRecords,
    MockServers,
    RunningMock,
    ask,
    serving_cli,
    start_cli,
    wait_until_serving,
    write_conversations,
)
from test_mock_cli import run_cli

from mockserver.audio import synthesize_wav
from mockserver.fixtures import FixtureError, fixture_from_dict, load_fixture_file, load_fixtures
from mockserver.protocol import MAX_HEAD_BYTES
from mockserver.serve import free_port
from mockserver.state import MAX_JOURNAL_HEADER_CHARS

CHAT = "/v1/chat/completions"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(call: Any, *args: Any) -> str:
    with pytest.raises(FixtureError) as caught:
        call(*args)
    return str(caught.value)


def speaking(file: str) -> str:
    return f"""
        conversation:
          - {{role: user, content: "speak"}}
          - role: assistant
            audio: {{file: {file!r}, transcript: "hi"}}
        """


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    folder = write_conversations(tmp_path_factory.mktemp("conversations"))
    return module_mock_server_factory(folder, no_delay=True, log_level="critical")


@pytest.fixture()
def http(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


# -- 1. audio files stay inside the fixtures folder ------------------------------------------------------


def test_an_audio_file_posted_at_run_time_is_refused_whatever_the_path(http: httpx.Client, tmp_path: Path) -> None:
    existing = tmp_path / "real.wav"
    existing.write_bytes(synthesize_wav(0.2, seed=1))
    messages = set()
    for file in (str(existing), str(tmp_path / "missing.wav"), "chime.wav", "../../etc/x.wav"):
        body = {
            "name": "posted-audio",
            "conversation": [
                {"role": "user", "content": "speak"},
                {"role": "assistant", "audio": {"file": file, "transcript": "hi"}},
            ],
        }
        response = http.post("/__mock/fixtures", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_fixture"
        messages.add(response.json()["error"]["message"])
    assert len(messages) == 1, "one message, whether the file exists or not"
    (message,) = messages
    assert "audio.file is not accepted" in message and "duration_s" in message
    assert str(tmp_path) not in message


def test_synthesised_audio_can_still_be_posted(http: httpx.Client) -> None:
    body = {
        "name": "posted-tone",
        "conversation": [
            {"role": "user", "content": "hum"},
            {"role": "assistant", "audio": {"duration_s": 0.2, "transcript": "hm"}},
        ],
    }
    assert http.post("/__mock/fixtures", json=body).status_code == 200


def test_an_audio_path_that_leaves_the_folder_is_refused_alike_whether_it_exists(tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    (tmp_path / "outside.wav").write_bytes(synthesize_wav(0.2, seed=2))
    messages = []
    for file in ("../outside.wav", "../missing.wav", str(tmp_path / "outside.wav"), "sub/../../outside.wav"):
        path = write(folder, "speak.yaml", speaking(file))
        message = error_of(load_fixtures, folder)
        assert message.startswith(f"{path}:4: audio file "), message
        messages.append(message.replace(repr(file), "FILE"))
    assert len(set(messages)) == 1, messages
    assert "outside the fixtures folder" in messages[0] and "not found" not in messages[0]


def test_an_escaping_audio_path_stops_the_start_with_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    (tmp_path / "outside.wav").write_bytes(synthesize_wav(0.2, seed=2))
    write(folder, "speak.yaml", speaking("../outside.wav"))
    result = run_cli("--fixtures", str(folder), "--port", str(free_port()))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "speak.yaml:4: audio file '../outside.wav' is outside the fixtures folder" in lines[0]


def test_a_sub_folder_fixture_may_use_a_wav_elsewhere_inside_the_folder(tmp_path: Path) -> None:
    wav = synthesize_wav(0.2, seed=3)
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "ding.wav").write_bytes(wav)
    write(tmp_path, "sub/speak.yaml", speaking("../sounds/ding.wav"))
    (fixture,) = load_fixtures(tmp_path)
    audio = fixture.turns[1].audio
    assert audio is not None and audio.wav == wav


def test_a_large_file_that_is_not_a_wav_is_refused_from_its_header(tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    with big.open("wb") as file:  # sparse: 283 MB on paper, nothing on disk
        file.truncate(283 * 1024 * 1024)
    path = write(tmp_path, "speak.yaml", speaking("big.wav"))
    tracemalloc.start()
    try:
        message = error_of(load_fixture_file, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message == f"{path}:4: audio file 'big.wav': not a WAV file (no RIFF/WAVE header)"
    assert peak < 50 * 1024 * 1024, f"{peak / 1e6:.0f} MB allocated to refuse a file by its header"


# -- 2. the request head is bounded, and so is what the journal keeps of it ------------------------------


def raw_request(url: str, head: bytes) -> bytes:
    """Send ``head`` on a fresh connection and read the answer until the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(head)
        except OSError:  # the server may close before it has read everything
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def test_a_request_head_over_the_bound_gets_431_and_the_connection_closes(server: RunningMock) -> None:
    value = b"x" * (MAX_HEAD_BYTES + 10_000)
    answer = raw_request(server.url, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + value + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"code": "request_head_too_large"' in answer
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_64_mb_header_is_refused_before_it_is_read(server: RunningMock) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    host, port = server.url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(head)
            block = b"y" * (1024 * 1024)
            for _ in range(64):
                sock.sendall(block)
                sent += len(block)
        except OSError:
            pass  # refused: the server closed the connection
    assert sent < 64 * 1024 * 1024, "the server read the whole header"


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak memory from /proc")
def test_ten_64_mb_headers_leave_the_memory_and_the_journal_small(tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "conversations")
    port = free_port()
    with serving_cli("--fixtures", str(folder), "--port", str(port), "--no-delay", "--log-level", "error") as cli:
        url = f"http://127.0.0.1:{port}"
        before = _peak_rss_mb(cli.process.pid)
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Big: "
        block = b"z" * (1024 * 1024)
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                try:
                    sock.sendall(head)
                    for _ in range(64):
                        sock.sendall(block)
                    sock.sendall(b"\r\nContent-Length: 2\r\n\r\n{}")
                    sock.recv(65536)  # the answer, once the server has read the whole request
                except OSError:
                    pass  # refused: the server closed the connection
        journal = httpx.get(f"{url}/__mock/requests", timeout=30)
        grown = _peak_rss_mb(cli.process.pid) - before
    assert journal.status_code == 200 and len(journal.content) < 1024 * 1024
    assert grown < 50, f"peak memory grew by {grown:.0f} MB"


def test_long_heads_within_the_bound_and_long_bodies_are_served(http: httpx.Client) -> None:
    value = "v" * (MAX_HEAD_BYTES - 2_000)
    assert http.get("/health", headers={"x-long": value}).status_code == 200
    long_message = "word " * 150_000  # 750 KB of body right behind a short head
    response = http.post(CHAT, json=ask(long_message, stream=False))
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_fixture_match"
    for _ in range(60):  # a kept-alive connection: the heads add up to far more than the bound
        assert http.get("/health", headers={"x-some": "s" * 2_000}).status_code == 200


def test_the_journal_keeps_a_bounded_part_of_each_header_value(http: httpx.Client) -> None:
    value = "h" * (MAX_HEAD_BYTES - 2_000)
    response = http.post(CHAT, json=ask("Say hello.", stream=False), headers={"x-long": value, "x-short": "ok"})
    assert response.status_code == 200
    (entry,) = http.get("/__mock/requests").json()["requests"]
    kept = entry["headers"]["x-long"]
    assert kept.startswith("h" * MAX_JOURNAL_HEADER_CHARS) and len(kept) < MAX_JOURNAL_HEADER_CHARS + 100
    assert "more characters cut" in kept and entry["headers"]["x-short"] == "ok"


# -- 3. fixture names are printable text -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["inj\r\nSet-Cookie: pwned=1", "tab\there", "nul\x00", "del\x7f", "sep\u2028x"])
def test_a_name_with_a_control_character_is_refused_with_its_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / "named.json"
    path.write_text(
        '{\n  "name": ' + __import__("json").dumps(name) + ',\n  "conversation": [\n'
        '    {"role": "user", "content": "hi"},\n    {"role": "assistant", "content": "Hello."}\n  ]\n}\n',
        encoding="utf-8",
    )
    message = error_of(load_fixture_file, path)
    assert message.startswith(f"{path}:2: name "), message
    assert "control character U+" in message


def test_a_name_with_a_control_character_is_refused_over_the_admin_api(http: httpx.Client) -> None:
    body = {
        "name": "inj\r\nSet-Cookie: pwned=1",
        "conversation": [{"role": "user", "content": "inject"}, {"role": "assistant", "content": "No."}],
    }
    response = http.post("/__mock/fixtures", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_fixture"
    assert "control character U+000D" in response.json()["error"]["message"]


# -- 4. fixture values are strict JSON -------------------------------------------------------------------

CALL = """
    conversation:
      - {{role: user, content: "call"}}
      - role: assistant
        tool_calls:
          - id: call_1
            function:
              name: f
              arguments: {arguments}
    """
NOT_JSON = {
    "NaN in a mapping": ("{x: .nan}", "NaN and Infinity are not JSON"),
    "Infinity in a mapping": ("{x: -.inf}", "NaN and Infinity are not JSON"),
    "NaN in a string": ("'{\"x\": NaN}'", "NaN is not JSON"),
    "Infinity in a string": ("'{\"x\": Infinity}'", "Infinity is not JSON"),
    "a number out of range": ("'{\"x\": 1e999}'", "out of range"),
    "a set": ("{x: !!set {a, b}}", "a set (!!set)"),
    "a timestamp": ("{x: !!timestamp 2024-01-01}", "a timestamp (!!timestamp)"),
    "binary": ("{x: !!binary aGk=}", "binary data (!!binary)"),
}


@pytest.mark.parametrize("case", list(NOT_JSON))
def test_arguments_that_are_not_strict_json_are_refused_with_their_line(tmp_path: Path, case: str) -> None:
    arguments, words = NOT_JSON[case]
    path = write(tmp_path, "call.yaml", CALL.format(arguments=arguments))
    message = error_of(load_fixture_file, path)
    assert message.startswith(f"{path}:8: "), message
    assert words in message


def test_a_json_schema_reply_with_nan_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "json.yaml",
        """
        match: {response_format: json_schema}
        conversation:
          - {role: user, content: "json"}
          - {role: assistant, content: '{"x": NaN}'}
        """,
    )
    message = error_of(load_fixture_file, path)
    assert message.startswith(f"{path}:4: ") and "strict JSON" in message and "NaN" in message


def test_nan_in_a_json_fixture_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text(
        '{"conversation": [\n {"role": "user", "content": "hi"},\n'
        ' {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"x": NaN}}}]}\n]}\n',
        encoding="utf-8",
    )
    message = error_of(load_fixture_file, path)
    assert message.startswith(f"{path}:3: ") and "NaN" in message


def test_a_yaml_set_in_arguments_stops_the_start_with_one_line_and_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "call.yaml", CALL.format(arguments="{x: !!set {a, b}}"))
    result = run_cli("--fixtures", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "call.yaml:8: " in lines[0]


def test_nan_from_python_is_refused_too() -> None:
    data = {
        "conversation": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"x": float("inf")}}}]},
        ]
    }
    with pytest.raises(FixtureError, match="not JSON"):
        fixture_from_dict(data)


# -- 5. symlinked sub-folders are followed, each real folder once ----------------------------------------


def test_a_symlinked_sub_folder_is_followed_and_loops_are_visited_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    write(shared, "linked.yaml", "conversation: [{role: user, content: a}, {role: assistant, content: b}]\n")
    root = tmp_path / "fixtures"
    write(root, "plain.yaml", "conversation: [{role: user, content: c}, {role: assistant, content: d}]\n")
    (root / "linked").symlink_to(shared, target_is_directory=True)
    (root / "again").symlink_to(shared, target_is_directory=True)  # the same real folder a second time
    (root / "linked-up").symlink_to(root, target_is_directory=True)  # a loop back to the top
    (shared / "loop").symlink_to(shared, target_is_directory=True)
    started = time.monotonic()
    names = sorted(fixture.name for fixture in load_fixtures(root))
    assert time.monotonic() - started < 5
    assert names == ["linked", "plain"]


# -- 6. --workers with a state file that goes away --------------------------------------------------------


def _worker_pids(url: str) -> set[int]:
    pids: set[int] = set()
    for _ in range(200):
        with httpx.Client(base_url=url, timeout=10) as client:  # a fresh connection: either worker may answer
            client.post(CHAT, json=ask("Say hello.", stream=False))
            pids.update(entry["worker"] for entry in client.get("/__mock/requests").json()["requests"])
        if len(pids) == 2:
            break
    return pids


def test_a_deleted_state_file_stops_the_workers_with_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "conversations")
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    process = start_cli(
        *("--fixtures", str(folder), "--port", str(port), "--no-delay", "--workers", "2", "--log-level", "warning"),
        env={"TMPDIR": str(temp)},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process, 60)
        pids = _worker_pids(url)
        assert pids, "no worker answered"
        (state_folder,) = temp.glob("mockserver-state-*")
        for path in state_folder.glob("state.sqlite3*"):
            path.unlink()
        os.kill(next(iter(pids)), signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1, stderr
    assert "shared state file" in lines[0] and "stopping the server" in lines[0]


# -- 7. a planned disconnect is not an error --------------------------------------------------------------


def test_a_disconnect_fault_is_logged_at_debug_with_its_name_not_as_an_error(
    mock_server_factory: MockServers, tmp_path: Path
) -> None:
    folder = write_conversations(tmp_path / "conversations")
    write(
        folder,
        "drop.yaml",
        """
        conversation:
          - {role: user, content: "drop me"}
          - role: assistant
            content: "One two three four five six seven."
            fault: {type: disconnect, after_chunks: 2}
        """,
    )
    records = LogRecords()
    with mock_server_factory(folder, no_delay=True, log_level="debug") as running:
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addHandler(records)
        try:
            for stream in (True, False):
                with pytest.raises(httpx.TransportError):
                    httpx.post(f"{running.url}{CHAT}", json=ask("drop me", stream=stream), timeout=10).read()
            time.sleep(0.2)
        finally:
            uvicorn_log.removeHandler(records)
    errors = [r for r in records.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    planned = [r.getMessage() for r in records.records if "cut on purpose" in r.getMessage()]
    assert len(planned) == 2 and all("disconnect" in message for message in planned)
    assert all(r.levelno == logging.DEBUG for r in records.records if "cut on purpose" in r.getMessage())
