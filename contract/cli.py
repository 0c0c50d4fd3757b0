"""``contract-check``: lint the contract document, or check a live server against it.

Exit codes: 0 everything holds, 1 a check (or the lint) found defects, 2 a usage
or input error (bad file, bad document, unreachable server), always one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


class _Parser(argparse.ArgumentParser):
    """argparse that keeps its one-line error and exit code 2, without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"contract-check: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="contract-check", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url", nargs="?", help="base URL of the server under test (http://host:port or .../v1)")
    parser.add_argument("--spec", default=None, help="OpenAPI document (default: the bundled openapi.yaml)")
    parser.add_argument("--lint", action="store_true", help="report defects of the document itself and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.lint:
        from .lint import lint_main

        return lint_main(args.spec, sys.stdout)
    if not args.url:
        sys.stderr.write("contract-check: error: give a URL to check, or --lint\n")
        return 2
    from .runner import runner_main

    return runner_main(args, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
