"""The documented table of checks is the one the registry renders, wherever the docs keep it."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.checks import CHECKS, checks_table
from contract.checks.table import REGENERATE, documents_with_table, main, table_in, with_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_table_is_the_generated_one() -> None:
    documents = documents_with_table(ROOT)
    assert documents, "no README.md or docs/*.md holds <!-- checks-table:start --> ... <!-- checks-table:end -->"
    for path in documents:
        documented = table_in(path.read_text(encoding="utf-8"))
        assert documented == checks_table(), (
            f"{path.relative_to(ROOT)}: the checks table differs from the registry; regenerate it from the "
            f"checkout with:\n    {REGENERATE}"
        )


def test_the_table_lists_every_check_once_in_registry_order() -> None:
    rows = checks_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(CHECKS)
    assert "``" not in checks_table()


def test_write_replaces_only_the_text_between_the_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "checks.md"
    page.write_text(
        "# Checks\n\nBefore.\n\n<!-- checks-table:start -->\n| stale |\n<!-- checks-table:end -->\n\nAfter.\n",
        encoding="utf-8",
    )
    assert main(["--write", "--root", str(tmp_path)]) == 0
    text = page.read_text(encoding="utf-8")
    assert table_in(text) == checks_table()
    assert text.startswith("# Checks\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n")
    assert with_table(text, checks_table()) == text  # a second run changes nothing
    assert main(["--write", "--root", str(tmp_path / "docs")]) == 2  # no file holds the markers there
    assert "updated" in capsys.readouterr().out
