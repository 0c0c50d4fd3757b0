"""contract-check against Schemathesis: requests per second and peak RSS on the same correct server.

Both tools check one server, the independent correct implementation of the contract in
``tests/brokenservers.py`` (``reference_app()``), run by uvicorn in a subprocess on a free loopback
port. The server counts every HTTP request it receives, so both tools' requests are counted the
same way, at the server. Each run is a fresh child process measured by a small wrapper (wall time
and the peak RSS of the tool's own process, from ``getrusage(RUSAGE_CHILDREN)``). Rounds interleave
the two tools, alternating which goes first, because this machine is shared and noisy: compare the
ratios, not the absolute figures.

contract-check runs with its default settings (every phase, every default check). Schemathesis runs
``st run --checks all`` on the OpenAPI 3.2 export of the same contract (``contract-check --export-spec
3.2``); it is skipped when it is not installed (``pip install -e '.[bench]'``).

    python benchmarks/checker_vs_schemathesis.py [--rounds 3] [--seed N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_vs_bare import free_port

ROOT = Path(__file__).resolve().parent.parent
COUNT_PATH = "/__bench/requests"  # the server's request counter; not counted itself
CHECKER = "contract-check"
SCHEMATHESIS = "schemathesis"


# -- the server -------------------------------------------------------------------------------


def counting_app(app: Callable[..., Any]) -> Callable[..., Any]:
    """``app`` behind an ASGI wrapper that counts HTTP requests and reports the count at COUNT_PATH."""
    counted = 0

    async def wrapper(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        nonlocal counted
        if scope["type"] == "http" and scope["path"] == COUNT_PATH:
            body = json.dumps({"requests": counted}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            counted += 1
        await app(scope, receive, send)

    return wrapper


def serve(port: int) -> None:
    """The server process: the correct reference server, counted, on 127.0.0.1:``port``."""
    import uvicorn

    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    from brokenservers import reference_app

    uvicorn.run(counting_app(reference_app()), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def requests_served(base: str) -> int:
    with urllib.request.urlopen(base + COUNT_PATH, timeout=10) as answer:
        return int(json.load(answer)["requests"])


def wait_until_serving(base: str, server: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before serving")
        try:
            requests_served(base)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not answer at {base} within {seconds:g} s")


# -- one measured run ----------------------------------------------------------------------------


def measure(command: list[str], cwd: str) -> None:
    """The wrapper process: run ``command``, then print its wall time, peak RSS and exit code as JSON.

    A fresh wrapper per run, so RUSAGE_CHILDREN holds this one tool's process and no earlier one.
    """
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_kb": peak_kb,
                "returncode": done.returncode,
                "tail": done.stdout.decode("utf-8", "replace")[-3000:],
            }
        )
    )


@dataclass
class Run:
    tool: str
    round: int
    requests: int
    seconds: float
    peak_mb: float
    returncode: int
    tail: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def timed_run(tool: str, round_number: int, command: list[str], base: str, workdir: str) -> Run:
    before = requests_served(base)
    wrapper = subprocess.run(
        [sys.executable, __file__, "--measure", workdir, "--", *command], capture_output=True, text=True, check=True
    )
    report = json.loads(wrapper.stdout)
    served = requests_served(base) - before
    return Run(
        tool, round_number, served, report["seconds"], report["peak_kb"] / 1024.0, report["returncode"], report["tail"]
    )


# -- the tools ---------------------------------------------------------------------------------


def checker_command(base: str, seed: int) -> list[str]:
    return [sys.executable, "-m", "contract.cli", base, "--seed", str(seed)]


def schemathesis_command(document: Path, base: str, seed: int) -> list[str] | None:
    """``st run --checks all`` on the 3.2 export, or None when Schemathesis is not installed."""
    if importlib.util.find_spec("schemathesis") is not None:
        st = [sys.executable, "-m", "schemathesis.cli"]
    elif shutil.which("st"):
        st = [shutil.which("st") or "st"]
    else:
        return None
    return [
        *st,
        "run",
        str(document),
        "--url",
        base,
        "--checks",
        "all",
        "--seed",
        str(seed),
        "--generation-database",
        "none",
        "--no-color",
    ]


def export_contract(target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "contract.cli", "--export-spec", "3.2", "-o", str(target)], cwd=ROOT, check=True
    )


# -- the report ----------------------------------------------------------------------------------


def print_runs(runs: list[Run]) -> None:
    print(f"{'round':>5}  {'tool':<15}{'requests':>9}{'seconds':>9}{'req/s':>8}{'peak RSS MB':>13}{'exit':>6}")
    for run in runs:
        print(
            f"{run.round:>5}  {run.tool:<15}{run.requests:>9}{run.seconds:>9.2f}{run.per_second:>8.1f}"
            f"{run.peak_mb:>13.1f}{run.returncode:>6}"
        )


def print_ratios(runs: list[Run]) -> None:
    checker = {run.round: run for run in runs if run.tool == CHECKER}
    rival = {run.round: run for run in runs if run.tool == SCHEMATHESIS}
    rounds = sorted(set(checker) & set(rival))
    if not rounds:
        return
    speed = [checker[r].per_second / rival[r].per_second for r in rounds if rival[r].per_second]
    memory = [checker[r].peak_mb / rival[r].peak_mb for r in rounds if rival[r].peak_mb]
    print()
    print(f"{'':<34}{'contract-check':>16}{'schemathesis':>14}{'ratio':>12}")
    print(
        f"{'requests/s (median of rounds)':<34}{statistics.median(checker[r].per_second for r in rounds):>16.1f}"
        f"{statistics.median(rival[r].per_second for r in rounds):>14.1f}{_spread(speed):>12}"
    )
    print(
        f"{'peak RSS MB (median of rounds)':<34}{statistics.median(checker[r].peak_mb for r in rounds):>16.1f}"
        f"{statistics.median(rival[r].peak_mb for r in rounds):>14.1f}{_spread(memory):>12}"
    )
    print(
        f"\nrequests/s ratio per round (contract-check / schemathesis): {', '.join(f'{value:.2f}' for value in speed)}"
    )
    print(
        f"peak RSS ratio per round (contract-check / schemathesis):   {', '.join(f'{value:.2f}' for value in memory)}"
    )


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.2f}" if round(low, 2) == round(high, 2) else f"{low:.2f}–{high:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both tools (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="seed for both tools (default: random, printed)")
    parser.add_argument("--show-output", action="store_true", help="print the end of each tool's output")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    try:
        wait_until_serving(base, server)
        with tempfile.TemporaryDirectory(prefix="checker-vs-schemathesis-") as workdir:
            document = Path(workdir) / "openapi-3.2.yaml"
            export_contract(document)
            rival = schemathesis_command(document, base, seed)
            print(f"seed {seed}; server reference_app() at {base}; {args.rounds} round(s); {os.cpu_count()} CPU(s)")
            print(f"contract-check: {' '.join(checker_command(base, seed)[1:])}")
            print(f"schemathesis:   {' '.join(rival[1:]) if rival else 'not installed (pip install -e .[bench])'}")
            print("each tool runs once unmeasured first, to warm its caches\n")
            tools = [(CHECKER, checker_command(base, seed))] + ([(SCHEMATHESIS, rival)] if rival else [])
            for tool, command in tools:
                # Unmeasured: a first run in a fresh folder fills caches (Schemathesis's own, Python's
                # bytecode), which later runs on the same machine find filled.
                timed_run(tool, 0, command, base, workdir)
            runs: list[Run] = []
            for round_number in range(1, args.rounds + 1):
                order = list(tools) if round_number % 2 else list(reversed(tools))
                for tool, command in order:
                    runs.append(timed_run(tool, round_number, command, base, workdir))
                    if args.show_output:
                        print(f"--- {tool}, round {round_number} ---\n{runs[-1].tail}")
            print_runs(runs)
            print_ratios(runs)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "--measure" and sys.argv[3] == "--":
        measure(sys.argv[4:], sys.argv[2])
    else:
        sys.exit(main())
