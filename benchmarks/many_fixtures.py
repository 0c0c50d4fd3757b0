"""Does the mock's per-request cost grow with the number of fixtures? 10 against 10,000, side by side.

Two ``mockserver --no-delay`` processes load folders of 10 and of 10,000 conversations (one file each; one
in ten matches its question with ``{contains: ...}`` instead of the literal text, so both lookups are
exercised; ``--matcher-every``). ``wrk -t1 -c50`` then sends JSON requests spread over a hundred of the
loaded conversations, to each server in turn, for ``--rounds`` interleaved rounds. Start-up time (process
start to the first answer of ``/health``) and resident memory after start-up are reported for both.

    python benchmarks/many_fixtures.py [--large 10000] [--seconds 2] [--rounds 8]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from mock_vs_bare import free_port

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ("weather", "train times", "museum hours", "a recipe", "the tides", "a poem", "flight status", "a joke")


def question(number: int) -> str:
    return f"Request {number}: tell me about {TOPICS[number % len(TOPICS)]} in city {number}."


def write_fixtures(folder: Path, count: int, matcher_every: int) -> None:
    folder.mkdir(parents=True)
    for number in range(count):
        user: dict[str, object] = {"role": "user", "content": question(number)}
        if matcher_every and number % matcher_every == matcher_every - 1:  # a lookup that is no dictionary hit
            user["content"] = {"contains": f"Request {number}: tell me"}
        reply = f"Here is what I know about {TOPICS[number % len(TOPICS)]} in city {number}: it is lovely."
        (folder / f"c{number:05d}.json").write_text(
            json.dumps({"conversation": [user, {"role": "assistant", "content": reply}]})
        )


def start(folder: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver.cli",
            "--fixtures",
            str(folder),
            "--no-delay",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            sys.exit(f"the mock exited while loading {folder}")
        try:
            httpx.get(f"{url}/health", timeout=1)
            return process, url, time.monotonic() - started
        except httpx.HTTPError:
            time.sleep(0.02)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk_script(count: int, path: Path) -> Path:
    """A wrk script that cycles through requests for a hundred conversations spread over ``count``."""
    numbers = sorted({round(i * (count - 1) / 99) for i in range(100)})
    bodies = [
        json.dumps({"model": "gpt-4o", "stream": False, "messages": [{"role": "user", "content": question(n)}]})
        for n in numbers
    ]
    lua = [
        "bodies = {" + ",".join(json.dumps(body) for body in bodies) + "}",
        "counter = 0",
        "request = function()",
        "  counter = counter + 1",
        '  return wrk.format("POST", "/v1/chat/completions", {["Content-Type"] = "application/json"}, '
        "bodies[(counter % #bodies) + 1])",
        "end",
    ]
    path.write_text("\n".join(lua) + "\n")
    return path


def wrk(url: str, script: Path, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{seconds}s", "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} error responses under load")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--matcher-every", type=int, default=10, help="one conversation in N uses a matcher; 0: none")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp())
    sizes = {"small": 10, "large": args.large}
    servers: dict[str, tuple[subprocess.Popen[bytes], str, float]] = {}
    try:
        for name, count in sizes.items():
            write_fixtures(work / name, count, args.matcher_every)
            servers[name] = start(work / name)
        scripts = {name: wrk_script(count, work / f"{name}.lua") for name, count in sizes.items()}
        rates: dict[str, list[float]] = {name: [] for name in sizes}
        for _ in range(args.rounds):
            for name in sizes:
                rates[name].append(wrk(servers[name][1] + "/v1/chat/completions", scripts[name], args.seconds))
        share = f"one in {args.matcher_every}" if args.matcher_every else "none"
        print(
            f"wrk -t1 -c50 -d{args.seconds}s, {args.rounds} interleaved rounds, JSON replies spread over 100 "
            f"conversations, {share} matched by {{contains: ...}}"
        )
        print(f"{'fixtures':>9} {'start-up s':>11} {'RSS MB':>8} {'req/s':>16}")
        for name, count in sizes.items():
            process, _, startup = servers[name]
            print(
                f"{count:>9,} {startup:>11.2f} {rss_mb(process.pid):>8.0f} "
                f"{min(rates[name]):>7,.0f}–{max(rates[name]):,.0f}"
            )
        costs = sorted(small / large for large, small in zip(rates["large"], rates["small"]))
        print(
            f"per-request cost, {args.large:,} against 10 fixtures: median {statistics.median(costs):.2f}×, "
            f"rounds {costs[0]:.2f}–{costs[-1]:.2f}× (1.00 = no growth)"
        )
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
