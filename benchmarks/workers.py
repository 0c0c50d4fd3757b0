"""Requests per second of ``mockserver --no-delay --workers N`` for N = 1 and N = 2, side by side.

Both servers run at once on loopback with the one-fixture setup of ``mock_vs_bare.py`` and are loaded in
turn by ``wrk -t1 -c50``, JSON replies and full streams, for ``--rounds`` interleaved rounds. With N = 1 the
state is in memory; with N = 2 each request also takes its counters and writes its journal entry in the
shared SQLite file. wrk needs a core of its own, so on a 2-core machine the two workers share what is left:
only the ratio measured in one run means much.

    python benchmarks/workers.py [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import shutil
import subprocess

from mock_vs_bare import ASK, free_port, one_fixture_folder, wait_up, wrk, wrk_arguments

WORKER_COUNTS = (1, 2)


def main() -> None:
    args = wrk_arguments(__doc__.splitlines()[0])
    work = one_fixture_folder()
    servers: dict[int, subprocess.Popen[bytes]] = {}
    urls: dict[int, str] = {}
    try:
        for count in WORKER_COUNTS:
            port = free_port()
            servers[count] = subprocess.Popen(
                [
                    "mockserver",
                    "--fixtures",
                    str(work / "fixtures"),
                    "--no-delay",
                    "--port",
                    str(port),
                    "--workers",
                    str(count),
                    "--log-level",
                    "error",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            urls[count] = f"http://127.0.0.1:{port}/v1/chat/completions"
            wait_up(urls[count], servers[count])
        results = {kind: {count: [] for count in WORKER_COUNTS} for kind in ("json", "stream")}
        for _ in range(args.rounds):
            for kind, stream in (("json", False), ("stream", True)):
                for count in WORKER_COUNTS:
                    results[kind][count].append(wrk(urls[count], {**ASK, "stream": stream}, args.seconds))
        print(f"wrk -t1 -c50 -d{args.seconds}s, {args.rounds} interleaved rounds, one text fixture")
        print(f"{'':8} {'--workers 1 req/s':>22} {'--workers 2 req/s':>22} {'ratio 2/1':>12}")
        for kind, by in results.items():
            ratios = [two / one for one, two in zip(by[1], by[2])]
            print(f"{kind:8} {_span(by[1]):>22} {_span(by[2]):>22} {min(ratios):.2f}–{max(ratios):.2f}".rjust(12))
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def _span(values: list[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


if __name__ == "__main__":
    main()
