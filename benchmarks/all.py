"""Every speed figure the project tracks, in one run: each benchmark script in turn, its output as printed.

1. the mock against the bare Starlette+uvicorn ceiling, JSON replies and streams (``mock_vs_bare.py``);
2. a thousand concurrent paced streams on one mock process (``paced_streams.py``);
3. ``contract-check`` against Schemathesis on the same correct server (``checker_vs_schemathesis.py``);
4. the mock's per-request cost with 10,000 fixtures against 10 (``many_fixtures.py``);
5. ``mockserver --workers 2`` against one process (``workers.py``).

    python benchmarks/all.py [--quick]

``--quick`` runs shorter rounds: figures to look at, not to quote.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS: tuple[tuple[str, list[str], list[str]], ...] = (  # script, its arguments, and with --quick
    ("mock_vs_bare.py", ["--seconds", "5", "--rounds", "3"], ["--seconds", "2", "--rounds", "2"]),
    ("paced_streams.py", [], ["--streams", "300"]),
    ("checker_vs_schemathesis.py", ["--rounds", "3"], ["--rounds", "1"]),
    ("many_fixtures.py", [], ["--large", "2000", "--rounds", "3"]),
    ("workers.py", ["--seconds", "5", "--rounds", "3"], ["--seconds", "2", "--rounds", "1"]),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    args = parser.parse_args()
    failed = []
    for number, (script, full, quick) in enumerate(RUNS, 1):
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n== {number}. python benchmarks/{script} {' '.join(command[2:])}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        print(result.stdout.rstrip())
        print(f"({time.monotonic() - started:.0f} s, exit {result.returncode})", flush=True)
        if result.returncode != 0:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
