"""One fixture file must never eat the machine: each hostile file is refused in seconds, in little memory,
with one line that names it (and its line where there is one), and exit code 2.

The command-line cases run ``mockserver --fixtures DIR`` as a real process and read its peak memory
from ``wait4`` (that child's own figure, not the maximum over every child the worker ever ran).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mock_helpers import MockServers, serving_cli

from mockserver.app import Settings, create_app
from mockserver.fixtures import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_FIXTURE_BYTES,
    FixtureError,
    fixture_from_dict,
    load_fixtures,
)
from mockserver.serve import ServerThread, free_port
from mockserver.startup_checks import (
    CONDENSE_AT,
    check_fixture,
    condensed,
    representative_chunks,
    representative_request,
)
from mockserver.stream import ReplyIdentity, render_chunks

ROOT = Path(__file__).resolve().parent.parent
HEAD = "conversation:\n  - {role: user, content: hi}\n  - role: assistant\n    content: "
TIME_BOUND = 15.0  # seconds: start-up of the interpreter and the contract is about one of them
RSS_BOUND_MB = 300


@dataclasses.dataclass
class Run:
    returncode: int
    stderr: str
    seconds: float
    peak_rss_mb: float


# A small Python process starts the server and reports the child's peak RSS from ``wait4``. Started from
# the test worker directly, the child's figure would include the worker's own memory, copied at fork.
_LAUNCHER = """
import os, subprocess, sys, threading
process = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
timer = threading.Timer(float(sys.argv[1]), process.kill)
timer.start()
_, status, usage = os.wait4(process.pid, 0)
timer.cancel()
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_mock(folder: Path, *args: str, timeout: float = 60) -> Run:
    """``mockserver --fixtures folder`` to its end (killed after ``timeout``), with its time and peak RSS."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _LAUNCHER,
            str(timeout),
            sys.executable,
            "-m",
            "mockserver.cli",
            "--fixtures",
            str(folder),
            "--port",
            "0",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=timeout + 30,
    )
    returncode, peak_kb = (int(word) for word in done.stdout.split()[-2:])
    return Run(returncode, done.stderr, time.monotonic() - started, peak_kb / 1024)


def assert_refused(run: Run, *words: str) -> str:
    """Exit 2, one line on stderr with every word in it, no traceback, in bounded time and memory."""
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mockserver: "), run.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert run.seconds < TIME_BOUND, f"took {run.seconds:.1f} s"
    assert run.peak_rss_mb < RSS_BOUND_MB, f"peak RSS {run.peak_rss_mb:.0f} MB"
    return lines[0]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def billion_laughs(indent: str = "") -> str:
    """9 levels of 9 aliases each: 9**9 strings once expanded, a few hundred bytes written."""
    lines = [f"{indent}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{indent}{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


# -- 1. YAML aliases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["top", "match.context"])
def test_billion_laughs_is_refused_at_its_alias(tmp_path: Path, where: str) -> None:
    text = (
        billion_laughs() + HEAD + "x\n"
        if where == "top"
        else "match:\n  context:\n" + billion_laughs("    ") + HEAD + "x\n"
    )
    path = write(tmp_path, "lol.yaml", text)
    line = assert_refused(run_mock(tmp_path), f"{path}:", "aliases", f"{MAX_ALIAS_NODES:,}")
    assert f"{path}:1:" not in line  # the line of the alias that passes the bound, not a default


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "loop.yaml", "match:\n  context:\n    a: &self [1, *self]\n" + HEAD + "x\n")
    with pytest.raises(FixtureError, match=r"loop\.yaml:3: alias \*self refers to a collection it is inside of"):
        load_fixtures(tmp_path)


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    write(
        tmp_path,
        "anchors.yaml",
        "match:\n  context: &ctx {team: a}\ndescription: x\n"
        "conversation:\n  - &ask {role: user, content: hi}\n"
        "  - {role: assistant, content: hello}\n  - *ask\n"
        "  - {role: assistant, content: again}\n",
    )
    [fixture] = load_fixtures(tmp_path)
    assert fixture.conversation[0] == fixture.conversation[2]


# -- 2. size ---------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.write(HEAD.encode())
        file.truncate(100 * 1024 * 1024)  # sparse: 100 MB that cost no disk
    assert_refused(run_mock(tmp_path), f"{path}:1:", "100.0 MB", f"{MAX_FIXTURE_BYTES / 1024 / 1024:.1f} MB")


# -- 3. what is not a regular file -------------------------------------------------------------------


def _symlink_loop(folder: Path) -> Path:
    os.symlink(folder / "b.yaml", folder / "a.yaml")
    os.symlink(folder / "a.yaml", folder / "b.yaml")
    return folder / "a.yaml"


def _dangling(folder: Path) -> Path:
    os.symlink(folder / "gone.yaml.orig", folder / "gone.yaml")
    return folder / "gone.yaml"


def _dev_zero(folder: Path) -> Path:
    os.symlink("/dev/zero", folder / "zero.yaml")
    return folder / "zero.yaml"


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.yaml")
    return folder / "pipe.yaml"


def _folder(folder: Path) -> Path:
    (folder / "x.yaml").mkdir()
    write(folder / "x.yaml", "inner.yaml", HEAD + "x\n")
    return folder / "x.yaml"


@pytest.mark.parametrize(
    "make, words",
    [
        (_symlink_loop, ["symlink loop"]),
        (_dangling, ["symlink to nothing"]),
        (_dev_zero, ["character device"]),
        (_fifo, ["FIFO"]),
        (_folder, ["is a folder, not a file"]),
    ],
    ids=["symlink-loop", "dangling-symlink", "link-to-dev-zero", "fifo", "folder-named-x.yaml"],
)
def test_what_is_not_a_regular_file_is_named_never_skipped_nor_waited_on(tmp_path: Path, make, words) -> None:
    write(tmp_path, "good.yaml", HEAD + "hello\n")
    path = make(tmp_path)
    assert_refused(run_mock(tmp_path), f"{path}:1:", *words)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.yaml", HEAD + "x\n")
    path.chmod(0)
    assert_refused(run_mock(tmp_path), f"{path}:1:", "Permission denied")


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.yaml", (HEAD + "caf").encode() + b"\xe9\n")
    assert_refused(run_mock(tmp_path), f"{path}:4:", "not UTF-8")


# -- 4. content that parsers choke on ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, line, words",
    [
        ("nul.yaml", HEAD + "hi\x00there\n", 4, ["NUL character"]),
        ("deep.yaml", HEAD + "x\nmatch:\n  context:\n    a: " + "[" * 10_000 + "]" * 10_000 + "\n", 7, ["nest"]),
        (
            "deep.json",
            '{"conversation": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}],\n'
            ' "match": {"context": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}}",
            2,
            [f"nested more than {MAX_DEPTH} levels"],
        ),
        ("int.yaml", HEAD + "x\n    usage: {prompt_tokens: " + "9" * 5000 + "}\n", 5, ["5000 digits"]),
        (
            "int.json",
            '{"conversation": [{"role": "user", "content": "hi"},\n {"role": "assistant", "content": "x", '
            '"usage": {"prompt_tokens": ' + "9" * 5000 + "}}]}",
            2,
            ["5000 digits"],
        ),
        ("word.yaml", "a" * 20_000 + ": 1\n" + HEAD + "x\n", 1, ["YAML syntax error"]),
    ],
    ids=["nul-byte", "yaml-10000-deep", "json-100000-deep", "yaml-5000-digits", "json-5000-digits", "20kb-word-as-key"],
)
def test_parser_limits_are_one_line_with_the_line(
    tmp_path: Path, name: str, text: str, line: int, words: list[str]
) -> None:
    path = write(tmp_path, name, text)
    assert_refused(run_mock(tmp_path), f"{path}:{line}:", *words)


def test_deep_json_inside_tool_call_arguments(tmp_path: Path) -> None:
    arguments = "[" * 100_000 + "]" * 100_000
    write(
        tmp_path,
        "args.json",
        json.dumps(
            {
                "conversation": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]},
                ]
            }
        ),
    )
    with pytest.raises(FixtureError, match=r"args\.json:1: .*nested"):
        load_fixtures(tmp_path)


def test_a_20kb_word_of_content_is_served(tmp_path: Path) -> None:
    write(tmp_path, "word.yaml", HEAD + "a" * 20_000 + "\n")
    started = time.monotonic()
    app = create_app(tmp_path, Settings(no_delay=True))
    assert time.monotonic() - started < 5
    with ServerThread(app) as server:
        reply = httpx.post(
            f"{server.url}/v1/chat/completions",
            timeout=10,
            json={"model": "gpt-4o-mini", "stream": False, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "a" * 20_000


# -- 5. an empty set ----------------------------------------------------------------------------------


def test_an_empty_folder_is_refused_unless_allowed(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "no fixtures here\n")
    assert_refused(run_mock(tmp_path), str(tmp_path), "no fixture file", "--allow-empty")
    port = free_port()
    empty = ("--fixtures", str(tmp_path), "--port", str(port), "--allow-empty", "--log-level", "warning")
    with serving_cli(*empty, seconds=20) as cli:  # serving, and so handling Ctrl-C
        assert "0 fixtures" in cli.banner


# -- 6. start-up cost ----------------------------------------------------------------------------------


def _long_text(size: int) -> str:
    return " ".join(f"word{i}" for i in range(size // 5))[:size]


@pytest.mark.parametrize("megabytes", [1, 10])
def test_a_large_fixture_starts_in_seconds(tmp_path: Path, megabytes: int) -> None:
    write(tmp_path, "big.yaml", HEAD + json.dumps(_long_text(megabytes * 1_000_000 - 200)) + "\n")
    with socket.socket() as taken:  # a port in use: the server exits right after loading, with its time
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = run_mock(tmp_path, "--port", str(taken.getsockname()[1]), timeout=60)
    assert run.returncode == 2 and "cannot listen" in run.stderr, run.stderr[-2000:]
    assert run.seconds < 10, f"{megabytes} MB fixture: start-up took {run.seconds:.1f} s"
    assert run.peak_rss_mb < 150 * megabytes + 100, f"{megabytes} MB fixture: peak RSS {run.peak_rss_mb:.0f} MB"


def test_the_sample_holds_every_kind_of_chunk() -> None:
    fixture = fixture_from_dict(
        {
            "conversation": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": _long_text(3 * CONDENSE_AT),
                    "refusal": "no " * 3000,
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": {"q": "x" * 9000}}},
                        {"function": {"name": "g", "arguments": "{}"}},
                    ],
                },
            ]
        }
    )
    [(index, turn)] = list(fixture.replies())
    identity = ReplyIdentity.new(random.Random(0), "m", 0)
    full = render_chunks(turn, identity, {})
    short = render_chunks(condensed(turn), identity, {})
    assert len(short) < len(full) / 2

    def kinds(chunks) -> set[str]:
        return {_kind(chunk.data) for chunk in chunks}

    assert kinds(representative_chunks(short)) == kinds(full)
    assert representative_chunks(full)[0] is full[0] and representative_chunks(full)[-1] is full[-1]
    assert representative_request(fixture, index, turn)["messages"] == [{"role": "user", "content": "hi"}]


def _kind(data: dict) -> str:
    if not data["choices"]:
        return "usage"
    choice = data["choices"][0]
    delta = choice["delta"]
    calls = delta.get("tool_calls")
    call_keys = tuple(sorted(calls[0])) + (calls[0]["index"],) if calls else ()
    return f"{sorted(delta)} {call_keys} {choice['finish_reason']}"


def test_a_reply_that_breaks_the_contract_still_fails_at_start_up(tmp_path: Path) -> None:
    fixture = fixture_from_dict(
        {"conversation": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _long_text(100_000)}]}
    )
    [(_, turn)] = list(fixture.replies())
    broken = dataclasses.replace(
        fixture,
        turns={
            1: dataclasses.replace(
                turn,
                tool_calls=({"id": "call_1", "type": "not-a-function", "function": {"name": "f", "arguments": "{}"}},),
            )
        },
    )
    from contract.core.validate import ContractValidator

    with pytest.raises(FixtureError, match="would break the contract"):
        check_fixture(broken, ContractValidator())


def test_posting_a_900kb_conversation_is_quick_and_leaves_the_loop_free(
    mock_server_factory: MockServers, tmp_path: Path
) -> None:
    write(tmp_path, "one.yaml", HEAD + "hello\n")
    body = {
        "name": "big",
        "conversation": [
            {"role": "user", "content": "long one"},
            {"role": "assistant", "content": _long_text(900_000)},
        ],
    }
    with (
        mock_server_factory(tmp_path, no_delay=True) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        started = time.monotonic()
        response = client.post("/__mock/fixtures", json=body)
        seconds = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "big"
        assert seconds < 5, f"POST took {seconds:.1f} s"
        assert client.get("/health").json()["fixtures"] == 2
