"""The documentation's table of checks, rendered from the registry so the docs cannot drift.

The table lives between two markers in the documentation; ``python -m
contract.checks.table --write`` rewrites it there in every file that holds them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .registry import CHECKS

START_MARKER = "<!-- checks-table:start -->"
END_MARKER = "<!-- checks-table:end -->"
REGENERATE = "python -m contract.checks.table --write"


def checks_table() -> str:
    """The Markdown table of every registered check: name, scope, whether it runs by default, what it asserts."""
    rows = ["| Check | Scope | Default | What it asserts |", "|---|---|---|---|"]
    for c in CHECKS.values():
        description = c.description.replace("``", "`").replace("|", "/")
        rows.append(f"| `{c.name}` | {c.scope} | {'on' if c.default else 'off'} | {description} |")
    return "\n".join(rows)


def documents_with_table(root: Path) -> list[Path]:
    """README.md and docs/*.md files that hold the markers."""
    candidates = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [path for path in candidates if path.is_file() and START_MARKER in path.read_text(encoding="utf-8")]


def table_in(text: str) -> str | None:
    """The text between the markers, stripped; None when they are missing or out of order."""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return text[start + len(START_MARKER) : end].strip()


def with_table(text: str, table: str) -> str:
    """``text`` with the markers' content replaced by ``table``."""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"no {START_MARKER} ... {END_MARKER} pair")
    return f"{text[: start + len(START_MARKER)]}\n{table}\n{text[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contract.checks.table", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", action="store_true", help="rewrite the table between the markers in README.md / docs/*.md"
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout (default: here)")
    args = parser.parse_args(argv)
    table = checks_table()
    if not args.write:
        sys.stdout.write(table + "\n")
        return 0
    documents = documents_with_table(args.root)
    if not documents:
        sys.stderr.write(f"no file under {args.root} holds {START_MARKER}\n")
        return 2
    for path in documents:
        text = path.read_text(encoding="utf-8")
        if table_in(text) != table:
            path.write_text(with_table(text, table), encoding="utf-8")
            sys.stdout.write(f"updated {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
