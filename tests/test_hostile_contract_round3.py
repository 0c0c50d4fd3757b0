"""contract-check against replies that attack its memory, and URLs that attack its reports.

Memory is measured in a subprocess (its own peak RSS, under an address-space limit, so a checker
that unpacks a bomb whole dies there instead of taking the machine); servers run on loopback ports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile_upstreams import basic_auth_app, comment_flood_app, gzip_bomb, gzip_bomb_app
from mock_helpers import plugin_args

from contract.client import Limits, Timeout, http_client, send
from contract.core.exchange import PreparedRequest
from contract.decoding import DECODE_STEP, decoded_pieces
from mockserver.serve import ServerThread

pytest_plugins = ["pytester"]
PLUGIN = plugin_args("chatstream-contract", "contract.pytest_plugin")  # loads the plugin in inner pytest runs
ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
ADDRESS_SPACE = 1024 * MB  # far below what unpacking 1 GiB whole needs, far above what a bounded read does

_CHILD = """
import json, resource, sys, time
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from contract.client import Timeout, http_client, send
from contract.core.exchange import PreparedRequest

def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would start at the forking pytest worker's size.
def rss_kb():
    return status_kb("VmRSS")

stream = sys.argv[2] == "stream"
raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}).encode()
request = PreparedRequest("POST", sys.argv[1], {"Content-Type": "application/json"}, None, raw)
before = rss_kb()
started = time.monotonic()
with http_client(1) as client:
    exchange = send(client, request, timeout=Timeout(5.0))
print(json.dumps({
    "error": exchange.transport_error,
    "seconds": time.monotonic() - started,
    "growth_mb": (status_kb("VmHWM") - before) / 1024,
    "body": len(exchange.body),
    "events": len(exchange.events),
    "comments": len(exchange.comments),
}))
"""


def _send_in_child(url: str, stream: bool) -> dict[str, Any]:
    """One request sent by a fresh interpreter; what it recorded, how long it took and how much RSS it grew."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url + "/chat/completions", "stream" if stream else "json", str(ADDRESS_SPACE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def bomb_url() -> Iterator[str]:
    server = ServerThread(gzip_bomb_app()).start()
    yield server.url
    server.stop()


def contract_check(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


# -- 1. a gzip bomb is unpacked in bounded steps ------------------------------------------------------


def test_the_bomb_is_about_a_kilobyte_that_unpacks_to_a_gibibyte() -> None:
    assert len(gzip_bomb()) < 16 * 1024


@pytest.mark.parametrize("stream", [False, True], ids=["json-body", "event-stream"])
def test_a_double_gzip_bomb_is_cut_at_the_size_cap_in_bounded_memory(bomb_url: str, stream: bool) -> None:
    seen = _send_in_child(bomb_url, stream)
    assert "stopped reading" in seen["error"], seen  # a cap: the body's or the stream's size, or an event's
    assert seen["seconds"] < 10, seen  # 2x the 5 s deadline
    assert seen["growth_mb"] < 200, seen


def test_a_gzip_bomb_run_of_the_cli_ends_within_twice_its_timeout(bomb_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    done = contract_check(
        bomb_url, "--timeout", "5", "--seed", "3", "--max-examples", "3", "--phases", "realistic", timeout=60
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "FAILED: transport_ok" in done.stdout.splitlines()[0]
    assert "bytes; stopped reading" in done.stdout
    assert elapsed < 2 * 5 + 5, elapsed  # the interpreter's start-up, then at most twice the deadline


def test_gzip_and_deflate_bodies_are_still_decoded(tmp_path: Path) -> None:
    """Bounded decoding must not change what a well-behaved compressed reply reads as."""
    import zlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    payload = json.dumps({"hello": "x" * 300_000}).encode()
    encoded = {
        "gzip": zlib.compress(payload, wbits=zlib.MAX_WBITS | 16),
        "deflate": zlib.compress(payload),
        "gzip, deflate": zlib.compress(zlib.compress(payload, wbits=zlib.MAX_WBITS | 16)),
        "identity": payload,
    }
    zstandard = pytest.importorskip("zstandard")
    frames = zstandard.ZstdCompressor().compress(payload[:1000]) + zstandard.ZstdCompressor().compress(payload[1000:])
    encoded["zstd"] = frames  # two frames: the whole body is both

    async def answer(request: Request) -> Response:
        name = request.query_params["e"]
        return Response(encoded[name], media_type="application/json", headers={"Content-Encoding": name})

    app = Starlette(routes=[Route("/r", answer, methods=["POST"])])
    with ServerThread(app) as server, http_client(1) as client:
        for name in encoded:
            request = PreparedRequest("POST", f"{server.url}/r?e={name}", {}, None, b"{}")
            exchange = send(client, request, timeout=Timeout(5.0))
            assert exchange.transport_error is None, (name, exchange.transport_error)
            assert exchange.body == payload, name


def test_a_corrupt_gzip_body_is_a_decoding_failure_not_a_traceback() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request: Request) -> Response:
        return Response(
            b"\x1f\x8b not gzip at all", media_type="application/json", headers={"Content-Encoding": "gzip"}
        )

    with ServerThread(Starlette(routes=[Route("/r", answer, methods=["POST"])])) as server, http_client(1) as client:
        exchange = send(client, PreparedRequest("POST", f"{server.url}/r", {}, None, b"{}"), timeout=Timeout(5.0))
    assert exchange.transport_error is not None
    assert exchange.transport_error.startswith("the body could not be decoded"), exchange.transport_error


class _PastDeadline(Exception):
    pass


def test_unpacking_that_yields_nothing_still_stops_at_the_deadline() -> None:
    """Deflate input that unpacks to nothing, forever (what a deeper bomb's inner layer amounts to): no
    piece comes out, so no cap is met; the deadline check still runs between steps."""

    def empty_blocks() -> Iterator[bytes]:
        while True:
            yield b"\x00\x00\x00\xff\xff" * (DECODE_STEP // 5)

    deadline = time.monotonic() + 0.5

    def check() -> None:
        if time.monotonic() > deadline:
            raise _PastDeadline()

    response = httpx.Response(200, headers={"Content-Encoding": "deflate"}, content=empty_blocks())
    started = time.monotonic()
    with pytest.raises(_PastDeadline):
        next(decoded_pieces(response, check))
    assert time.monotonic() - started < 5


# -- 2. SSE comments count against the event cap ------------------------------------------------------


def test_a_flood_of_sse_comments_is_cut_at_the_event_cap_in_bounded_memory() -> None:
    with ServerThread(comment_flood_app()) as server:
        seen = _send_in_child(server.url, stream=True)
    assert "events and comments" in seen["error"], seen
    assert seen["comments"] <= Limits().max_events + DECODE_STEP // 2, seen  # the cap, and one piece read past it
    assert seen["growth_mb"] < 200, seen
    assert seen["seconds"] < 10, seen


def test_a_few_keep_alive_comments_are_still_kept() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request: Request) -> Response:
        return Response(b": ping\n\ndata: 1\n\n: ping\n\ndata: [DONE]\n\n", media_type="text/event-stream")

    with ServerThread(Starlette(routes=[Route("/r", answer, methods=["POST"])])) as server, http_client(1) as client:
        exchange = send(client, PreparedRequest("POST", f"{server.url}/r", {}, None, b"{}"), timeout=Timeout(5.0))
    assert exchange.transport_error is None
    assert [c.text for c in exchange.comments] == ["ping", "ping"]
    assert [e.data for e in exchange.events] == ["1", "[DONE]"]


# -- 3. credentials in the URL never show -------------------------------------------------------------

PASSWORD = "hunter2pass"


def test_url_credentials_authenticate_and_never_show(tmp_path: Path) -> None:
    app = basic_auth_app("user", PASSWORD)
    reports = {name: tmp_path / f"r.{name}" for name in ("junit", "json", "html")}
    with ServerThread(app) as server:
        url = server.url.replace("http://", f"http://user:{PASSWORD}@") + "/"
        done = contract_check(
            url,
            "--seed",
            "11",
            "--max-examples",
            "3",
            "--timeout",
            "5",
            *(word for name, path in reports.items() for word in (f"--{name}", str(path))),
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("FAILED: stream_terminated"), done.stdout[:500]
    assert app.admitted > 0 and app.refused == 0  # every request still authenticated with the URL's credentials
    texts = {"stdout": done.stdout, "stderr": done.stderr, **{n: p.read_text() for n, p in reports.items()}}
    for where, text in texts.items():
        assert PASSWORD not in text, where
    assert "user:***@" in done.stdout
    assert json.loads(texts["json"])["url"].startswith("http://user:***@127.0.0.1:")
    rerun = next(line for line in done.stdout.splitlines() if line.startswith("rerun"))
    assert '"http://user:${URL_PASSWORD}@127.0.0.1:' in rerun


@pytest.mark.slow
def test_the_pytest_plugin_authenticates_with_url_credentials_and_never_shows_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    app = basic_auth_app("user", PASSWORD)
    with ServerThread(app) as server:
        url = server.url.replace("http://", f"http://user:{PASSWORD}@")
        result = pytester.runpytest_subprocess(
            *PLUGIN,
            "--contract-url",
            url,
            "--contract-max-examples",
            "3",
            "-p",
            "no:cacheprovider",
        )
    output = "\n".join(result.outlines + result.errlines)
    assert "stream_terminated" in output and app.admitted > 0 and app.refused == 0
    assert PASSWORD not in output
    assert "user:***@127.0.0.1" in output


def test_an_unreachable_url_with_credentials_names_it_without_the_password() -> None:
    from brokenservers import closed_port

    done = contract_check(f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}/v1", "--timeout", "2")
    assert done.returncode == 2
    assert PASSWORD not in done.stdout + done.stderr
    assert "user:***@127.0.0.1" in done.stderr


def test_a_bad_url_with_credentials_names_it_without_the_password() -> None:
    done = contract_check(f"http://user:{PASSWORD}@[::1/v1")
    assert done.returncode == 2
    assert PASSWORD not in done.stdout + done.stderr


def test_redaction_hides_url_passwords_in_any_text() -> None:
    from contract.core.redaction import Redactor, redact_url

    assert redact_url("see http://u:p%40ss@h:1/v1 and https://tok@h/") == "see http://u:***@h:1/v1 and https://***@h/"
    assert Redactor().text("GET http://me:secret@h/x") == "GET http://me:***@h/x"
    assert redact_url("http://h:1/v1 mailto:a@b") == "http://h:1/v1 mailto:a@b"


# -- 4. malformed URLs and TLS to a plain-HTTP port are usage errors ---------------------------------


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://[::1/v1", "is not a valid URL"),
        ("http://" + "a" * 64 + ".example:8000/v1", "host"),
        ("http://a..b:8000/v1", "host"),
        ("https://127.0.0.1:99999/v1", "invalid port"),
    ],
    ids=["unclosed-ipv6-bracket", "label-over-63", "empty-label", "https-port-out-of-range"],
)
def test_a_malformed_url_is_one_line_and_exit_2(url: str, words: str) -> None:
    done = contract_check(url, "--timeout", "2", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contract-check: error: "), done.stderr
    assert words in lines[0]


@pytest.mark.parametrize(
    "url", ["http://[::1/v1", "http://" + "a" * 64 + ".example/v1", "http://user:hunter2pass@a..b/v1", "ftp://x/v1"]
)
def test_the_library_refuses_a_malformed_url_with_a_usage_error(url: str) -> None:
    """``contract.runner.run`` checks the URL as the command line does: one line, the password not in it."""
    from contract.errors import UsageError
    from contract.runner import run

    with pytest.raises(UsageError) as refused:
        run(url, max_examples=1)
    assert "\n" not in str(refused.value) and "hunter2pass" not in str(refused.value)


def test_https_to_a_plain_http_port_says_tls_failed_and_exits_2() -> None:
    from brokenservers import reference_app

    with ServerThread(reference_app()) as server:
        done = contract_check(server.url.replace("http://", "https://"), "--timeout", "3", "--max-examples", "2")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "TLS handshake failed" in lines[0] and "try http://" in lines[0], lines[0]


def test_a_tls_failure_of_one_request_has_its_own_words() -> None:
    from brokenservers import reference_app

    with ServerThread(reference_app()) as server, http_client(1) as client:
        url = server.url.replace("http://", "https://") + "/chat/completions"
        exchange = send(client, PreparedRequest("POST", url, {}, None, b"{}"), timeout=Timeout(3.0))
    assert exchange.transport_error is not None
    assert exchange.transport_error.startswith("TLS handshake failed"), exchange.transport_error
