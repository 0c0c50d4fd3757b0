"""The dashboard at ``GET /__mock/`` and its live feed ``GET /__mock/events``, over a real server and socket."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_helpers import BUSY_THEN_FREE as SCENARIO
from mock_helpers import MockServers, RunningMock, ask, serving_cli, write_conversations

from contract.core.sse import SSEEvent, SSEParser
from mockserver.serve import free_port

CHAT = "/v1/chat/completions"
WAIT = 5.0  # a bound for a loaded machine; the feed polls every 0.25 s
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def server(module_mock_server_factory: MockServers, tmp_path_factory: pytest.TempPathFactory) -> RunningMock:
    return module_mock_server_factory(write_conversations(tmp_path_factory.mktemp("conversations")), no_delay=True)


@pytest.fixture()
def http(server: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


class Watcher:
    """``GET /__mock/events`` read in a thread, as a browser's EventSource would; each event lands in a queue."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[float, SSEEvent]] = queue.Queue()
        self.seen: list[SSEEvent] = []
        self.headers: httpx.Headers | None = None
        self._socket: socket.socket | None = None
        self._opened = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        assert self._opened.wait(WAIT), "the event stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave as a closed browser tab does: the connection goes, so the blocked read in the thread ends too."""
        self._stop.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(WAIT)
        assert not self._thread.is_alive()
        self._client.close()

    def _read(self) -> None:
        parser = SSEParser()
        try:
            with self._client.stream("GET", "/__mock/events") as response:
                self.headers = response.headers
                self._socket = response.extensions["network_stream"].get_extra_info("socket")
                self._opened.set()
                for piece in response.iter_raw():
                    for item in parser.feed(piece):
                        if isinstance(item, SSEEvent):
                            self.events.put((time.monotonic(), item))
                    if self._stop.is_set():
                        return
        except (httpx.HTTPError, RuntimeError):  # closed from the test thread
            pass
        finally:
            self._opened.set()

    def wait_for(self, event: str, accept: Callable[[Any], bool] = lambda data: True) -> tuple[float, Any]:
        """The arrival time and data of the first ``event`` whose data ``accept`` takes, within ``WAIT``."""
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                arrived, item = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(item)
            if item.event == event:
                data = json.loads(item.data)
                if accept(data):
                    return arrived, data
        raise AssertionError(f"no matching {event!r} event within {WAIT} s; saw {[e.event for e in self.seen]}")


def test_the_page_is_one_self_contained_html_document(http: httpx.Client) -> None:
    response = http.get("/__mock/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert page.startswith("<!doctype html>") and "<style>" in page and "<script>" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"<(?:link|iframe|object|embed|img)\b", page, re.IGNORECASE), "no external resources"
    assert "http://" not in page and "https://" not in page and "@import" not in page and "url(" not in page
    assert 'new EventSource("events")' in page, "the feed, relative to the page"


def test_the_page_sets_every_value_as_text_never_as_markup(http: httpx.Client) -> None:
    page = http.get("/__mock/").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in page
    assert "textContent" in page


def test_a_request_appears_on_the_feed_with_its_fixture_and_status(server: RunningMock, http: httpx.Client) -> None:
    with Watcher(server.url) as watcher:
        assert watcher.headers is not None and watcher.headers["content-type"].startswith("text/event-stream")
        watcher.wait_for("fixtures")  # the state when the feed opens
        sent = time.monotonic()
        assert http.post(CHAT, json=ask("Say hello.")).status_code == 200
        arrived, entry = watcher.wait_for("request")
        assert (entry["fixture"], entry["turn"], entry["play"], entry["status"]) == ("hello", 1, 1, 200)
        assert entry["path"] == CHAT and entry["fault"] is None and entry["near_misses"] == []
        assert arrived - sent < WAIT


def test_the_feed_opens_with_the_journal_so_far(server: RunningMock, http: httpx.Client) -> None:
    for content in ("Say hello.", "Are you busy?"):
        http.post(CHAT, json=ask(content))
    with Watcher(server.url) as watcher:
        first = watcher.wait_for("request")[1]
        second = watcher.wait_for("request")[1]
    assert (first["fixture"], first["status"]) == ("hello", 200)
    assert (second["fixture"], second["status"]) == ("overloaded", 503), "oldest first"
    assert second["fault"] is not None


def test_a_request_that_matches_nothing_shows_its_near_misses(server: RunningMock, http: httpx.Client) -> None:
    with Watcher(server.url) as watcher:
        assert http.post(CHAT, json=ask("Say helo.")).status_code == 400
        entry = watcher.wait_for("request")[1]
    assert entry["fixture"] is None and entry["status"] == 400
    assert entry["error"]["code"] == "no_fixture_match"
    assert any(miss.startswith("hello (hello.yaml:") for miss in entry["near_misses"]), entry["near_misses"]


def test_hit_counts_and_scenario_plays_follow_the_requests(server: RunningMock, http: httpx.Client) -> None:
    assert http.post("/__mock/fixtures", json=SCENARIO).status_code == 200
    with Watcher(server.url) as watcher:
        listed = watcher.wait_for("fixtures")[1]["fixtures"]
        assert listed == http.get("/__mock/fixtures").json()["fixtures"], "what GET /__mock/fixtures returns"
        scenario = watcher.wait_for("scenarios")[1]["scenarios"]
        assert {"fixture": "busy-then-free", "turn": 1, "plays": 0, "steps": 2, "then": "repeat-last"} in scenario
        for _ in range(2):
            http.post(CHAT, json=ask("Say hello."))
        assert http.post(CHAT, json=ask("Busy?")).status_code == 503

        def hits(data: Any) -> dict[str, int]:
            return {item["name"]: item["hits"] for item in data["fixtures"]}

        watcher.wait_for("fixtures", lambda data: hits(data)["hello"] == 2 and hits(data)["busy-then-free"] == 1)
        plays = watcher.wait_for(
            "scenarios", lambda data: {"fixture": "busy-then-free", "turn": 1, "plays": 1} in _short(data)
        )[1]
        assert {"fixture": "hello", "turn": 1, "plays": 2} in _short(plays)


def _short(data: Any) -> list[dict[str, Any]]:
    return [{key: row[key] for key in ("fixture", "turn", "plays")} for row in data["scenarios"]]


def test_a_reset_clears_what_the_feed_shows(server: RunningMock, http: httpx.Client) -> None:
    http.post(CHAT, json=ask("Say hello."))
    with Watcher(server.url) as watcher:
        watcher.wait_for("request")
        assert http.post("/__mock/reset").status_code == 200
        watcher.wait_for("cleared")
        http.post(CHAT, json=ask("Are you busy?"))
        assert watcher.wait_for("request")[1]["fixture"] == "overloaded"


def test_a_hostile_value_arrives_as_json_text(server: RunningMock, http: httpx.Client) -> None:
    with Watcher(server.url) as watcher:
        http.post(CHAT, json=ask(HOSTILE), headers={"Authorization": "Bearer sk-secret-value"})
        entry = watcher.wait_for("request")[1]
        raw = next(item.data for item in watcher.seen if item.event == "request")
    assert entry["body"]["messages"][0]["content"] == HOSTILE, "the page's script sets it with textContent"
    assert "\n" not in raw and json.dumps(HOSTILE) in raw
    assert "sk-secret-value" not in raw, "credentials stay redacted"


def test_a_watcher_that_leaves_stops_its_polling(server: RunningMock, http: httpx.Client) -> None:
    store = server.app.state.mock.store
    reads = 0
    entries = store.entries

    def counted() -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        return entries()

    store.entries = counted
    try:
        with Watcher(server.url) as watcher:
            watcher.wait_for("fixtures")
            time.sleep(0.6)
            assert reads >= 2, "the feed polls while someone watches"
        time.sleep(0.5)  # the server notices the client left
        settled = reads
        time.sleep(1.0)
        assert reads == settled, "nobody watches: nothing polls"
    finally:
        del store.entries
    assert http.get("/health").status_code == 200
    with Watcher(server.url) as again:
        http.post(CHAT, json=ask("Say hello."))
        assert again.wait_for("request")[1]["fixture"] == "hello"


def test_other_methods_get_405(http: httpx.Client) -> None:
    for path in ("/__mock/", "/__mock/events"):
        response = http.post(path)
        assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_with_workers_the_feed_shows_every_workers_requests(tmp_path: Path) -> None:
    folder = write_conversations(tmp_path / "conversations")
    port = free_port()
    # two spawned workers each load the contract: slow on a busy machine
    with serving_cli("--fixtures", str(folder), "--port", str(port), "--no-delay", "--workers", "2", seconds=60):
        url = f"http://127.0.0.1:{port}"
        fresh = httpx.Limits(max_keepalive_connections=0)  # each request on a new connection: either worker answers
        with Watcher(url) as watcher, httpx.Client(base_url=url, timeout=30, limits=fresh) as http:
            workers: set[int] = set()
            for _ in range(40):
                for _ in range(5):
                    assert http.post(CHAT, json=ask("Say hello.")).status_code == 200
                for _ in range(5):
                    workers.add(watcher.wait_for("request", lambda entry: entry["fixture"] == "hello")[1]["worker"])
                if len(workers) == 2:
                    break
            assert len(workers) == 2, "the page shows the requests of both workers, whichever serves it"
