"""The README and the pages under docs/ point at files and headings that exist.

Reference text moves between pages; a relative link or an ``#anchor`` left behind would then lead
nowhere without anyone noticing. Links are read outside code (fenced blocks and inline code spans),
and anchors are the ones GitHub derives from headings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ID = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _prose(text: str, *, keep_code: bool = False) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked unless kept."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        opener = _FENCE.match(line.lstrip())
        if opener:
            marker = opener.group(1)[0] * 3
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        if fence is None:
            lines.append((number, line if keep_code else _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)))
    return lines


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    title = re.sub(r"<[^>]+>", "", title)  # inline HTML
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a Markdown file: its headings (repeats numbered as GitHub does) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = path.read_text(encoding="utf-8")
    for _, line in _prose(text, keep_code=True):
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found.update(_HTML_ID.findall(text))
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """One line per relative link or anchor of ``page`` that leads nowhere."""
    problems = []
    for number, line in _prose(page.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if _SCHEME.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(root)}:{number}: {target}"
            if not destination.is_relative_to(root) or not destination.exists():
                problems.append(f"{where}: no such file")
            elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                problems.append(f"{where}: no heading #{anchor} in {destination.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_exists(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = ROOT / "README.md"
    linked = {
        (readme.parent / target.partition("#")[0]).resolve()
        for _, line in _prose(readme.read_text(encoding="utf-8"))
        for target in _LINK.findall(line)
    }
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Fault `type`s: the table\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n[ok](docs/other.md#fault-types-the-table) [ok](#title) `[code](nowhere.md)`\n"
        "[gone](docs/gone.md) [no anchor](docs/other.md#faults) [self](#nothing)\n"
        "```\n[in a block](nowhere.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md:4: docs/gone.md: no such file",
        "README.md:4: docs/other.md#faults: no heading #faults in docs/other.md",
        "README.md:4: #nothing: no heading #nothing in README.md",
    ]


def test_slugs_follow_github() -> None:
    assert slug("Several worker processes: `--workers N`") == "several-worker-processes---workers-n"
    assert slug("OpenAPI 3.2 export and other tools") == "openapi-32-export-and-other-tools"
    assert slug("`match`: conditions on the request") == "match-conditions-on-the-request"


def test_the_setup_commands_stay_in_the_readme() -> None:
    """CI (.ci/run) and reviewers run the README's Set-up commands as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("\n## Set-up\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert "python -m pip install . && mockserver" in blocks
    assert 'python -m pip install -e ".[test]" && python -m pytest -n 2' in blocks
    assert 'python -m pip install -e ".[test]" && python -m pytest -n 2' in (ROOT / ".ci" / "run").read_text()
