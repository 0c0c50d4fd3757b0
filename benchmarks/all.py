"""Every speed figure the project tracks, in one run: each benchmark script in turn, its output as printed.

1. the mock against the bare Starlette+uvicorn ceiling, JSON replies and streams (``mock_vs_bare.py``);
2. a thousand concurrent paced streams on one mock process (``paced_streams.py``);
3. ``contract-check`` against Schemathesis on the same correct server (``checker_vs_schemathesis.py``);
4. the mock's per-request cost with 10,000 fixtures against 10 (``many_fixtures.py``);
5. ``mockserver --workers 2`` against one process (``workers.py``).

    python benchmarks/all.py [--quick]

``--quick`` runs shorter rounds: figures to look at, not to quote.

At the end, the figures the project has targets for, each against its target, read from the outputs above.
"""

from __future__ import annotations

import argparse
import re
import statistics
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


# (script, what, how to find it in the output, the target, whether higher is better)
TARGETS: tuple[tuple[str, str, str, float, bool], ...] = (
    (
        "paced_streams.py",
        "paced streams: first-token lateness p99 ms",
        r"first-token lateness ms.*?p99\s+([\d.]+)",
        25,
        False,
    ),
    (
        "paced_streams.py",
        "paced streams: pacing lateness p99 ms",
        r"pacing lateness ms.*?p99\s+([\d.]+)",
        25,
        False,
    ),
    ("mock_vs_bare.py", "JSON replies, mock / bare (lowest round)", r"^json\s.*?([\d.]+)–[\d.]+\s*$", 0.8, True),
    ("mock_vs_bare.py", "streams in one write, mock / bare (lowest)", r"^stream\s{2,}.*?([\d.]+)–[\d.]+\s*$", 0, True),
    (
        "mock_vs_bare.py",
        "streams per event, mock / bare (lowest)",
        r"^stream per event\s.*?([\d.]+)–[\d.]+\s*$",
        0,
        True,
    ),
    (
        "checker_vs_schemathesis.py",
        "contract-check / Schemathesis requests/s (median round)",
        r"requests/s ratio per round[^:]*:\s*([\d., ]+)$",
        3.0,
        True,
    ),
)


def target_lines(outputs: dict[str, str]) -> list[str]:
    """Each tracked figure against its target (a target of 0: reported, not judged)."""
    lines = []
    for script, label, pattern, target, higher in TARGETS:
        found = re.search(pattern, outputs.get(script, ""), re.MULTILINE)
        if found is None:
            lines.append(f"{label:58} not measured")
            continue
        value = statistics.median(float(part) for part in found.group(1).replace(" ", "").split(",") if part)
        if not target:
            lines.append(f"{label:58} {value:8.2f}")
            continue
        met = value >= target if higher else value <= target
        wanted = f"{'≥' if higher else '≤'} {target:g}"
        lines.append(f"{label:58} {value:8.2f}   target {wanted:6} {'met' if met else 'NOT met'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    args = parser.parse_args()
    failed = []
    outputs: dict[str, str] = {}
    for number, (script, full, quick) in enumerate(RUNS, 1):
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n== {number}. python benchmarks/{script} {' '.join(command[2:])}", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        print(result.stdout.rstrip())
        outputs[script] = result.stdout
        print(f"({time.monotonic() - started:.0f} s, exit {result.returncode})", flush=True)
        if result.returncode != 0:
            failed.append(script)
    print("\n== the figures with targets")
    print("\n".join(target_lines(outputs)))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
