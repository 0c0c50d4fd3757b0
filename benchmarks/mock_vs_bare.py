"""Requests per second of ``mockserver --no-delay`` against the bare Starlette+uvicorn ceiling, side by side.

Both servers run as separate processes on loopback, serve the same bytes (one text fixture), and are
loaded in turn by ``wrk -t1 -c50`` for JSON replies and for full streams, for ``--rounds`` interleaved
rounds. The mock writes an unpaced stream at once, so the stream's ceiling is the bare app writing it at
once too (``stream``); ``stream per event`` is the same mock against the bare app writing each event on
its own. The machine is shared, so only the ratio measured in one run means much.

    python benchmarks/mock_vs_bare.py [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
FIXTURE = """\
conversation:
  - {role: user, content: "Tell me about the weather."}
  - role: assistant
    content: "It is sunny and warm in Paris today, with a light breeze from the west and a few clouds."
"""
ASK = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me about the weather."}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            sys.exit(f"server exited: {process.args}")
        try:
            httpx.post(url, json={**ASK, "stream": False}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    sys.exit(f"server did not start: {url}")


def capture(url: str) -> dict[str, object]:
    """The mock's own bytes for the benchmark request, for the bare app to replay."""
    plain = httpx.post(url, json={**ASK, "stream": False}).text
    streamed = httpx.post(url, json={**ASK, "stream": True}).text
    return {"json": plain, "events": [part + "\n\n" for part in streamed.split("\n\n") if part]}


def wrk(url: str, body: dict[str, object], seconds: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    out = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{seconds}s", "-s", script.name, url], capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} error responses under load")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wrk_arguments(description: str) -> argparse.Namespace:
    """``--seconds`` and ``--rounds`` of a wrk benchmark; exits when wrk is missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    return args


def one_fixture_folder() -> Path:
    """A new working folder whose ``fixtures`` folder holds the benchmark's one text fixture."""
    work = Path(tempfile.mkdtemp())
    (work / "fixtures").mkdir()
    (work / "fixtures" / "weather.yaml").write_text(FIXTURE)
    return work


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0])
    work = one_fixture_folder()
    mock_port, bare_port = free_port(), free_port()
    mock = subprocess.Popen(
        [
            "mockserver",
            "--fixtures",
            str(work / "fixtures"),
            "--no-delay",
            "--port",
            str(mock_port),
            "--log-level",
            "error",
        ],
        stderr=subprocess.DEVNULL,
    )
    servers = [mock]
    try:
        mock_url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        wait_up(mock_url, mock)
        (work / "payloads.json").write_text(json.dumps(capture(mock_url)))
        bare = subprocess.Popen(
            [sys.executable, str(HERE / "bare_app.py"), str(work / "payloads.json"), str(bare_port)]
        )
        servers.append(bare)
        bare_url = f"http://127.0.0.1:{bare_port}/v1/chat/completions"
        wait_up(bare_url, bare)
        per_event_url = f"http://127.0.0.1:{bare_port}/per-event/v1/chat/completions"
        forms = (("json", False, bare_url), ("stream", True, bare_url), ("stream per event", True, per_event_url))
        results: dict[str, dict[str, list[float]]] = {kind: {"bare": [], "mock": []} for kind, _, _ in forms}
        for _ in range(args.rounds):
            for kind, stream, ceiling in forms:
                for name, url in (("bare", ceiling), ("mock", mock_url)):
                    results[kind][name].append(wrk(url, {**ASK, "stream": stream}, args.seconds))
        print(f"wrk -t1 -c50 -d{args.seconds}s, {args.rounds} interleaved rounds, one text fixture")
        print(f"{'':16} {'bare req/s':>22} {'mock req/s':>22} {'ratio':>12}")
        for kind, by in results.items():
            ratios = [m / b for m, b in zip(by["mock"], by["bare"])]
            print(
                f"{kind:16} {_span(by['bare']):>22} {_span(by['mock']):>22} {min(ratios):.2f}–{max(ratios):.2f}".rjust(
                    12
                )
            )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


def _span(values: list[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


if __name__ == "__main__":
    main()
