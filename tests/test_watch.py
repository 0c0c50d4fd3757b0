"""``--watch``: edits, new files and removals are served without a restart; a broken edit changes nothing."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import MockServers, RunningMock, ask, start_cli

from mockserver.serve import free_port

URL = "/v1/chat/completions"
ROOT = Path(__file__).resolve().parent.parent
POLL = 0.05  # the tests poll fast; the command line polls every 0.5 s
DEADLINE = 10.0  # generous: a loaded machine may be slow to schedule the watcher thread


def conversation(question: str, answer: str) -> str:
    return f'conversation:\n  - {{role: user, content: "{question}"}}\n  - {{role: assistant, content: "{answer}"}}\n'


def edit(path: Path, text: str) -> None:
    """Replace the file in one step, as editors save, and so that the watcher sees it even within one
    tick of the file clock; the temporary file is hidden, so the watcher ignores it."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    if temporary.stat().st_mtime_ns <= before:
        os.utime(temporary, ns=(before + 1_000_000, before + 1_000_000))
    os.replace(temporary, path)


def eventually(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"within {DEADLINE} s: {what}")
        time.sleep(0.02)


def answer(http: httpx.Client, question: str) -> str | None:
    response = http.post(URL, json=ask(question, stream=False))
    if response.status_code != 200:
        return None
    return str(response.json()["choices"][0]["message"]["content"])


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "conversations"
    folder.mkdir()
    (folder / "hello.yaml").write_text(conversation("Say hello.", "Hello!"), encoding="utf-8")
    (folder / "bye.yaml").write_text(conversation("Say bye.", "Bye!"), encoding="utf-8")
    return folder


@pytest.fixture()
def served(mock_server_factory: MockServers, folder: Path) -> Iterator[tuple[RunningMock, httpx.Client]]:
    running = mock_server_factory(folder, no_delay=True, watch=True, watch_interval=POLL)
    with httpx.Client(base_url=running.url, timeout=10) as http:
        yield running, http


def test_an_edited_file_is_served_without_a_restart(folder: Path, served: Any) -> None:
    _, http = served
    assert answer(http, "Say hello.") == "Hello!"
    edit(folder / "hello.yaml", conversation("Say hello.", "Hello again, edited!"))
    eventually(lambda: answer(http, "Say hello.") == "Hello again, edited!", "the edit is served")


def test_added_and_removed_files_come_and_go(folder: Path, served: Any) -> None:
    _, http = served
    (folder / "sub").mkdir()
    edit(
        folder / "sub" / "new.json",
        '{"conversation": [{"role": "user", "content": "New?"}, {"role": "assistant", "content": "Yes."}]}',
    )
    eventually(lambda: answer(http, "New?") == "Yes.", "the new file is served")
    assert {item["file"] for item in http.get("/__mock/fixtures").json()["fixtures"]} == {
        "bye.yaml",
        "hello.yaml",
        "sub/new.json",
    }
    (folder / "bye.yaml").unlink()
    eventually(lambda: http.post(URL, json=ask("Say bye.")).status_code == 400, "the removed file is gone")
    assert http.get("/health").json()["fixtures"] == 2


def test_a_broken_edit_keeps_the_previous_set_and_logs_one_line(
    folder: Path, served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, http = served
    caplog.set_level(logging.INFO, logger="mockserver")
    edit(folder / "hello.yaml", conversation("Say hello.", "Hello!") + "  - {role: assistant, contnet: oops}\n")
    problem = f"{folder / 'hello.yaml'}:4: unknown key 'contnet' in an assistant turn; did you mean 'content'?"
    eventually(lambda: any(problem in r.getMessage() for r in caplog.records), "the problem is logged")
    time.sleep(POLL * 6)  # several more polls see the same broken file
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage().startswith(problem), [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text
    assert answer(http, "Say hello.") == "Hello!" and answer(http, "Say bye.") == "Bye!"
    edit(folder / "hello.yaml", conversation("Say hello.", "Fixed."))
    eventually(lambda: answer(http, "Say hello.") == "Fixed.", "the fixed file is served")
    assert any("reloaded 2 fixtures" in r.getMessage() and "hello.yaml" in r.getMessage() for r in caplog.records)


def test_a_duplicate_name_across_files_is_refused_like_at_start_up(
    folder: Path, served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, http = served
    edit(folder / "copy.yaml", "name: hello\n" + conversation("Say hello.", "Impostor."))
    eventually(lambda: "fixture name 'hello' is already used by" in caplog.text, "the clash is logged")
    assert answer(http, "Say hello.") == "Hello!"


def test_a_reload_keeps_run_time_state_of_unchanged_conversations(folder: Path, served: Any) -> None:
    _, http = served
    edit(
        folder / "flaky.yaml",
        'conversation:\n  - {role: user, content: "Flaky?"}\n'
        '  - {role: assistant, content: "Works.", fault: {type: http_error, times: 1}}\n',
    )
    eventually(lambda: http.post(URL, json=ask("Flaky?")).status_code == 500, "the scenario is served")
    http.post(
        "/__mock/fixtures",
        json={
            "name": "added",
            "conversation": [{"role": "user", "content": "Added?"}, {"role": "assistant", "content": "Still here."}],
        },
    )
    edit(folder / "bye.yaml", conversation("Say bye.", "Farewell."))
    eventually(lambda: answer(http, "Say bye.") == "Farewell.", "the edit is served")
    assert http.post(URL, json=ask("Flaky?")).status_code == 200, "the unchanged scenario did not start over"
    assert answer(http, "Added?") == "Still here.", "conversations added at run time survive a reload"


def test_the_watcher_stops_with_the_server(mock_server_factory: MockServers, folder: Path) -> None:
    with mock_server_factory(folder, no_delay=True, watch=True, watch_interval=POLL) as running:
        watcher = running.app.state.mock.watcher
        assert watcher.running
    eventually(lambda: not watcher.running, "the watcher stops")


def test_the_command_line_watches(folder: Path) -> None:
    port = free_port()
    process = start_cli(
        "--fixtures", str(folder), "--port", str(port), "--no-delay", "--watch", "--log-level", "warning"
    )
    try:
        assert process.stdout is not None
        assert "watching for changes" in process.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            eventually(lambda: _up(http), "the server answers")
            assert answer(http, "Say hello.") == "Hello!"
            edit(folder / "hello.yaml", "conversation: [}\n")
            time.sleep(1.5)  # three polls of the command line's 0.5 s
            assert answer(http, "Say hello.") == "Hello!"
            edit(folder / "hello.yaml", conversation("Say hello.", "Hello from the edit."))
            eventually(lambda: answer(http, "Say hello.") == "Hello from the edit.", "the edit is served")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    broken = [line for line in stderr.splitlines() if "hello.yaml:1: YAML syntax error" in line]
    assert len(broken) == 1 and "still serving the fixtures loaded before" in broken[0], stderr
    assert "Traceback" not in stderr


def _up(http: httpx.Client) -> bool:
    try:
        return http.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def test_a_changed_wav_reloads_the_fixtures_that_use_it(
    folder: Path, served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from mockserver.audio import synthesize_wav

    _, http = served
    (folder / "chime.wav").write_bytes(synthesize_wav(0.2, seed=1))
    edit(
        folder / "chime.yaml",
        'conversation:\n  - {role: user, content: "Chime."}\n'
        '  - {role: assistant, audio: {file: chime.wav, transcript: "Ding."}}\n',
    )
    eventually(lambda: answer(http, "Chime.") == "Ding.", "the audio fixture is served")
    edit(folder / "chime.wav", "not a WAV any more")
    eventually(lambda: "chime.yaml:3: audio file 'chime.wav'" in caplog.text, "the fixture using it is re-checked")
    assert answer(http, "Chime.") == "Ding."
