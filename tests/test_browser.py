"""The HTML report and the dashboard in a real browser: headless Chromium driven by Playwright.

They run where Debian's ``chromium`` and the ``playwright`` package are installed (``.ci/run`` installs
both; the ``browser`` extra brings Playwright) and are skipped elsewhere, saying why. Playwright drives
the system's Chromium, so no browser is downloaded. A screenshot of each page is saved under
``test-artifacts/`` (or ``$TEST_ARTIFACTS``) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from brokenservers import reference_app
from mock_helpers import MockServers, ask, write_conversations

from contract.html_report import write_html
from contract.runner import run
from mockserver.serve import ServerThread

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")
    if CHROMIUM is None:
        pytest.skip("the browser tests need Debian's chromium (apt-get install chromium)")
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A new page that records every console error and uncaught exception."""
    opened = browser.new_page(viewport={"width": 1200, "height": 900})
    opened.errors = []
    opened.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    try:
        yield opened
    finally:
        opened.close()


def artifact(name: str) -> Path:
    folder = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_the_html_report_renders_its_tables_and_plots_with_the_runs_numbers(page: Any, tmp_path: Path) -> None:
    with ServerThread(reference_app("chunk_missing_id")) as server:
        result = run(server.url, max_examples=5, seed=5, timeout=2.0)
    report = tmp_path / "report.html"
    write_html(result, report)
    page.goto(report.as_uri())
    assert page.locator("h1, .verdict").first.inner_text().strip() != ""
    assert "FAILED" in page.inner_text("body")
    rows = page.locator("table").first.locator("tr")
    shown = {}
    for index in range(rows.count()):
        cells = [cell.strip() for cell in rows.nth(index).locator("td").all_inner_texts()]
        if cells:
            shown[cells[0]] = cells[1:4]
    assert shown == {check: [str(s.judged), str(s.passed), str(s.failed)] for check, s in result.stats.items()}
    plots = page.locator("svg")
    assert plots.count() >= 4
    for index in range(plots.count()):
        box = plots.nth(index).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, "each plot is drawn at its size"
    titles = " ".join(page.locator("svg title").all_text_contents())
    assert f"{result.sample_counts['ttfb_ms']} responses" in titles
    page.click("a:text-is('chunks_valid')")
    assert page.locator(":target").count() == 1, "the failing check links to its failure"
    page.screenshot(path=str(artifact("html-report.png")), full_page=True)
    assert page.errors == []


def test_a_request_sent_to_the_mock_appears_on_the_dashboard_within_a_second(
    page: Any, mock_server_factory: MockServers, tmp_path: Path
) -> None:
    with mock_server_factory(write_conversations(tmp_path / "c"), no_delay=True) as server:
        page.goto(f"{server.url}/__mock/")
        page.wait_for_selector("text=live", timeout=10_000)
        fixtures = page.locator("tr", has_text="hello.yaml")
        assert fixtures.count() >= 1, "the loaded fixtures are listed"
        with httpx.Client(base_url=server.url, timeout=10) as http:
            sent = time.monotonic()
            assert http.post("/v1/chat/completions", json=ask("Say hello.", stream=False)).status_code == 200
            page.wait_for_selector("td:has-text('user: Say hello.')", timeout=5_000)
            seen_after = time.monotonic() - sent
            http.post("/v1/chat/completions", json=ask("Nothing like any fixture.", stream=False))
            page.wait_for_selector("text=no match", timeout=5_000)
        # The feed polls every 0.25 s, so a request shows within a second; the margin is for a loaded machine.
        assert seen_after < 1.5, f"the request took {seen_after:.2f} s to appear"
        page.screenshot(path=str(artifact("dashboard.png")), full_page=True)
        assert page.errors == []  # checked while the server still runs: its shutdown drops the feed
