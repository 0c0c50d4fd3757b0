"""Time to a verdict: a default run against each broken server of the test suite, beside the correct one.

A run against a server that breaks a rule sends what a run against a correct server sends, and then
reduces each failing check's smallest request (``contract.reduce``) on a budget; this measures what
that costs. Every server is ``reference_app`` from ``tests/brokenservers.py`` (correct, broken in one
rule, or crashing on a tool without ``function``), served in this process by uvicorn on a free
loopback port. Each round runs the correct server first and then every broken one, with the same seed
and the default options (every phase, every default check, ``--max-examples 50``), and prints each
run's requests and seconds and their ratio to the correct server's run of the same round: the machine
is shared and noisy, so compare the ratios, not the seconds.

    python benchmarks/time_to_verdict.py [--rounds 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from brokenservers import BROKEN, reference_app  # noqa: E402

from contract.runner import run  # noqa: E402
from mockserver.serve import ServerThread  # noqa: E402

CRASH = "crashes_on_empty_tool"


def _app(name: str | None) -> Any:
    if name == CRASH:
        return reference_app(crashes_on_empty_tool=True)
    return reference_app(name)


def _one_run(name: str | None, seed: int) -> tuple[int, float, list[str], int]:
    with ServerThread(_app(name), log_level="critical") as server:
        started = time.monotonic()
        result = run(server.url, seed=seed, timeout=5.0)
        seconds = time.monotonic() - started
    largest = max((len(record.request.raw_body) for record in result.failures), default=0)
    return result.requests_sent, seconds, result.failed_checks, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    names: list[str | None] = [None, *sorted(BROKEN), CRASH]
    ratios: dict[str, list[tuple[float, float]]] = {str(name): [] for name in names[1:]}
    last: dict[str, tuple[int, float, list[str], int]] = {}
    for _ in range(args.rounds):
        correct_requests, correct_seconds, _, _ = _one_run(None, args.seed)
        last["correct"] = (correct_requests, correct_seconds, [], 0)
        for name in names[1:]:
            requests, seconds, failed, largest = _one_run(name, args.seed)
            ratios[str(name)].append((requests / correct_requests, seconds / correct_seconds))
            last[str(name)] = (requests, seconds, failed, largest)
    print(f"seed {args.seed}, {args.rounds} round(s); default options; ratios to the correct server's run")
    requests, seconds, _, _ = last["correct"]
    print(f"{'server':<26} {'requests':>8} {'seconds':>8} {'req ratio':>10} {'time ratio':>14}  example  failed")
    print(f"{'correct':<26} {requests:>8} {seconds:>8.1f} {'1.00':>10} {'1.00':>14}")
    worst = 0.0
    for name, pairs in ratios.items():
        requests, seconds, failed, largest = last[name]
        request_ratio = statistics.median(pair[0] for pair in pairs)
        time_low, time_high = min(pair[1] for pair in pairs), max(pair[1] for pair in pairs)
        worst = max(worst, time_high)
        span = f"{time_low:.2f}–{time_high:.2f}" if len(pairs) > 1 else f"{time_low:.2f}"
        print(
            f"{name:<26} {requests:>8} {seconds:>8.1f} {request_ratio:>10.2f} {span:>14}  {largest:>5} B  "
            + ", ".join(failed)
        )
    print(f"worst time ratio {worst:.2f} (target: at most 2)")


if __name__ == "__main__":
    main()
