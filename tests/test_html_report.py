"""The HTML report of real runs: one self-contained file, the run's numbers in its tables and plots, no secret."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from brokenservers import reference_app
from mock_helpers import MockServers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contract.html_report import anchor, html_text
from contract.results import RunResult
from contract.runner import run
from contract.tally import Thinned
from mockserver.serve import ServerThread

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Bearer sk-test-SECRET-4242"
URL_IN_CSS = re.compile(r"url\(", re.IGNORECASE)


class Page(HTMLParser):
    """What the tests look at: tags with their attributes, the ids, the table rows, the SVG titles."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.rows: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}  # check -> href
        self.plots: list[tuple[str, str]] = []  # (data-plot, title) of each SVG
        self.styles: list[str] = []
        self._row: str | None = None
        self._cells: list[str] = []
        self._plot: str | None = None
        self._text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append((tag, values))
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "tr" and "data-check" in values:
            self._row, self._cells = values["data-check"], []
        if tag == "td":
            self._text = []
        if tag == "a" and self._row is not None:
            self.links[self._row] = values.get("href", "")
        if tag == "svg":
            self._plot = values.get("data-plot")
        if tag in ("title", "style"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None:
            self._cells.append("".join(self._text).strip())
        if tag == "tr" and self._row is not None:
            self.rows[self._row] = self._cells[1:]
            self._row = None
        if tag == "title" and self._plot is not None:
            self.plots.append((self._plot, "".join(self._text)))
            self._plot = None  # the plot's own title; the bars' tooltips come after it
        if tag == "style":
            self.styles.append("".join(self._text))

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def titles(self, kind: str) -> list[str]:
        return [title for plot, title in self.plots if plot == kind]


def _report(result: RunResult) -> tuple[str, Page]:
    text = html_text(result)
    return text, Page(text)


def _assert_self_contained(text: str, page: Page) -> None:
    assert "<script" not in text.lower()
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "img", "object", "embed")
        for name, value in attrs.items():
            if name in ("src", "href", "xlink:href", "action", "srcset") or name.startswith("on"):
                assert not re.match(r"\s*(https?:)?//", value), (tag, name, value)
                assert name.startswith(("href",)) and value.startswith("#"), (tag, name, value)
            assert "url(" not in value.lower()
    for style in page.styles:
        assert not URL_IN_CSS.search(style) and "@import" not in style


def _assert_numbers(result: RunResult, page: Page) -> None:
    assert set(page.rows) >= set(result.stats)
    for name, stats in result.stats.items():
        assert page.rows[name] == [str(stats.judged), str(stats.passed), str(stats.failed), result.verdict(name)]
    for record in result.failures:
        assert page.links[record.check] == f"#{anchor(record)}"
        assert anchor(record) in page.ids
    histograms = page.titles("histogram")
    assert len(histograms) == 3
    for title, series in zip(histograms, ("ttfb_ms", "ttft_ms", "gap_ms")):
        assert "(ms)" in title and f", {result.sample_counts[series]} " in title
    assert result.timings["ttfb_ms"]["count"] == result.sample_counts["ttfb_ms"]
    (phases,) = page.titles("bars")
    total = sum(phase.requests for phase in result.phases)
    assert "(s)" in phases and f"{len(result.phases)} phases, {total} requests" in phases


@pytest.fixture(scope="module")
def broken_run() -> RunResult:
    """A server whose stream chunks lack `id`, and which echoes the Authorization header in its errors."""
    with ServerThread(reference_app("chunk_missing_id", echo_authorization=True)) as server:
        return run(server.url, max_examples=8, seed=5, timeout=2.0, headers={"Authorization": SECRET})


@pytest.fixture(scope="module")
def good_run() -> RunResult:
    with ServerThread(reference_app()) as server:
        return run(server.url, max_examples=5, seed=3, timeout=2.0)


def test_a_broken_server_report_is_self_contained_and_carries_the_run(broken_run: RunResult) -> None:
    text, page = _report(broken_run)
    _assert_self_contained(text, page)
    _assert_numbers(broken_run, page)
    assert '<span class="verdict FAILED">FAILED</span>' in text
    assert f"--seed {broken_run.seed}" in text
    assert [f.check for f in broken_run.failures] == ["chunks_valid"]
    assert 'class="hl"' in text  # the chunk without `id` is marked in the response excerpt
    assert "curl -N" in text and "Authorization: [redacted]" in text
    assert "the server is to blame" in text


def test_no_secret_given_to_the_run_appears(broken_run: RunResult) -> None:
    text = html_text(broken_run)
    assert SECRET not in text and SECRET.split()[-1] not in text and "SECRET" not in text


def test_a_passing_run_has_every_plot_and_a_timeline(good_run: RunResult) -> None:
    text, page = _report(good_run)
    _assert_self_contained(text, page)
    _assert_numbers(good_run, page)
    assert good_run.ok and '<span class="verdict PASSED">PASSED</span>' in text
    assert 1 <= len(good_run.timelines) <= 5
    (timeline,) = page.titles("timeline")
    assert f"{len(good_run.timelines)} streams" in timeline
    assert text.count('class="dot"') == sum(len(arrivals) for arrivals in good_run.timelines)
    assert not page.links  # nothing failed, nothing linked


def _shouting_app() -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        error = {"message": "<b>boom</b> & <script>alert(1)</script>", "type": "server_error", "code": None}
        return JSONResponse({"error": error}, status_code=500)

    return Starlette(routes=[Route("/chat/completions", chat, methods=["POST"])])


def test_server_strings_are_escaped() -> None:
    with ServerThread(_shouting_app()) as server:
        result = run(server.url, max_examples=3, seed=1, timeout=2.0, phases=["realistic"])
    text, page = _report(result)
    assert result.failures and not result.ok
    assert "<b>boom</b>" not in text and "&lt;b&gt;boom&lt;/b&gt;" in text
    _assert_self_contained(text, page)
    assert '<span class="verdict INCONCLUSIVE">INCONCLUSIVE</span>' in text  # 500 to every valid request


def test_thinned_series_stay_bounded_and_even() -> None:
    series = Thinned(100)
    for value in range(10_000):
        series.add(float(value))
    assert series.seen == 10_000 and 50 <= len(series.values) <= 100
    steps = {b - a for a, b in zip(series.values, series.values[1:])}
    assert steps == {float(series.stride)}


def contract_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contract.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_command_line_writes_the_report_against_the_mock(mock_server_factory: MockServers, tmp_path: Path) -> None:
    with mock_server_factory(None, no_delay=True) as server:
        done = contract_check(
            server.url + "/v1", "--max-examples", "5", "--seed", "11", "--html", str(tmp_path / "r.html")
        )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    page = Page(text)
    _assert_self_contained(text, page)
    assert "seed <b>11</b>" in text and "--seed 11" in text
    assert len(page.titles("histogram")) == 3 and page.titles("bars")


def test_an_unwritable_html_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with ServerThread(reference_app()) as server:
        target = tmp_path / "missing" / "r.html"
        done = contract_check(server.url, "--max-examples", "2", "--seed", "1", "--html", str(target))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"contract-check: error: cannot write report --html {target}: no such directory"
    ]
    assert done.stdout == ""
