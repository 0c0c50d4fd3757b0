"""The dashboard: ``GET /__mock/``, one page that shows the journal, the fixtures and the scenarios, live.

The page is a view of the store and nothing else: it holds no state of its
own and the request path of ``/chat/completions`` does no work for it. Its
script opens ``GET /__mock/events``, a Server-Sent Events stream that polls
the store every ``POLL_SECONDS`` while it is open and sends what changed:

- ``event: request``: one per journal entry, oldest first (all of the
  journal when the stream opens, then each new one), its data the entry as
  ``GET /__mock/requests`` returns it;
- ``event: cleared``: the journal lost entries the page shows (a reset, a
  ``DELETE /__mock/requests``, or more new requests than the journal keeps);
  the ``request`` events that follow are the journal;
- ``event: fixtures``: ``{"fixtures": [...]}``, as ``GET /__mock/fixtures``
  returns it, when a hit count or the served set changed;
- ``event: scenarios``: ``{"scenarios": [...]}``, the play count of each
  fixture turn that has been played or is a scenario, when one changed.

Nobody watching costs nothing: the polling lives in the stream's own task and
ends when the client leaves. With ``--workers`` every process reads the same
shared store, so whichever serves the page shows every worker's requests.
Journal entries are redacted when recorded; the page sets every value with
``textContent``, never as markup.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .fixtures import Fixture
from .state import Entry, MockState, fixture_summary
from .wire import WireResponse

POLL_SECONDS = 0.25  # how often an open event stream looks at the store
KEEP_ALIVE_SECONDS = 15.0  # a comment line this often, so that idle proxies keep the stream open
RETRY_MS = 1000  # how soon the browser reconnects after the stream ends

PAGE_HEADERS = {
    # Everything is inline; the script may only talk back to this server.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
EVENT_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def page(state: MockState, request: Request) -> Response:
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


async def events(state: MockState, request: Request) -> Response:
    return WireResponse(watch(state), media_type="text/event-stream; charset=utf-8", headers=EVENT_HEADERS)


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event; the JSON is on one line and escapes everything outside ASCII."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode("ascii")


async def watch(state: MockState, poll: float = POLL_SECONDS) -> AsyncIterator[bytes]:
    """What changed in the store, polled every ``poll`` seconds until the client leaves (the task is cancelled)."""
    yield f"retry: {RETRY_MS}\n\n".encode("ascii")
    journal = JournalFollower()
    served: tuple[Fixture, ...] | None = None
    plays: dict[tuple[str, int], int] | None = None
    scenarios: list[dict[str, Any]] | None = None
    quiet_since = time.monotonic()
    while True:
        out = b""
        cleared, new = journal.update(state.store.entries())
        if cleared:
            out += sse("cleared", {})
        for entry in new:
            out += sse("request", entry)
        now_served, now_plays = state.store.fixtures, state.store.plays()
        if now_served is not served or now_plays != plays:
            summaries = await asyncio.to_thread(_summaries, state, now_served)
            out += sse("fixtures", {"fixtures": summaries})
            now_scenarios = scenario_state(now_served, now_plays)
            if now_scenarios != scenarios:
                out += sse("scenarios", {"scenarios": now_scenarios})
            served, plays, scenarios = now_served, now_plays, now_scenarios
        if not out and time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
            out = b": keep-alive\n\n"
        if out:
            quiet_since = time.monotonic()
            yield out
        await asyncio.sleep(poll)


class JournalFollower:
    """Which journal entries a watcher has not seen yet, from successive reads of the journal.

    The journal is ordered by when each request finished; it drops its oldest entries when full and is
    emptied by a reset. The follower remembers the newest entry it passed on and finds it again in the
    next read: what follows it is new. When it is gone, the journal lost what the watcher shows.
    """

    def __init__(self) -> None:
        self._last: Entry | None = None
        self._length = 0

    def update(self, entries: list[Entry]) -> tuple[bool, list[Entry]]:
        """``(cleared, new)``: whether the watcher must drop what it shows, and the entries to show next."""
        last, length = self._last, self._length
        self._last, self._length = (entries[-1] if entries else None), len(entries)
        if last is None:
            return False, entries
        if entries and (entries[-1] is last or entries[-1] == last) and len(entries) == length:
            return False, []  # the common case: nothing new, decided by one comparison
        for position in range(len(entries) - 1, -1, -1):
            if entries[position] is last or entries[position] == last:
                return False, entries[position + 1 :]
        return True, entries


def _summaries(state: MockState, served: tuple[Fixture, ...]) -> list[dict[str, Any]]:
    return [fixture_summary(state, fixture) for fixture in served]


def scenario_state(served: tuple[Fixture, ...], plays: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
    """Each fixture turn that is a scenario or has been played: its plays, and the scenario's length and policy."""
    played: dict[str, set[int]] = {}
    for name, turn in plays:
        played.setdefault(name, set()).add(turn)
    rows = []
    for fixture in served:
        for turn in sorted(played.get(fixture.name, set()) | set(fixture.scenarios)):
            scenario = fixture.scenarios.get(turn)
            rows.append(
                {
                    "fixture": fixture.name,
                    "turn": turn,
                    "plays": plays.get((fixture.name, turn), 0),
                    "steps": scenario.length if scenario is not None else None,
                    "then": scenario.then if scenario is not None else None,
                }
            )
    return rows


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mockserver dashboard</title>
<style>
  :root { color-scheme: light dark; --muted: #777; --ok: #1a7f37; --bad: #c62828; --warn: #b26a00; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  #status { color: var(--muted); }
  #status.live { color: var(--ok); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .6rem .25rem 0; border-bottom: 1px solid #8884; vertical-align: top; }
  th { font-weight: 600; }
  td.num, th.num { text-align: right; }
  .s2 { color: var(--ok); } .s4, .s5 { color: var(--bad); } .fault { color: var(--warn); }
  .muted { color: var(--muted); }
  ul.near { margin: 0; padding-left: 1.1rem; }
  code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
  .ask { max-width: 28rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 2rem; }
  @media (max-width: 900px) { .grid { grid-template-columns: minmax(0, 1fr); } }
</style>
</head>
<body>
<h1>mockserver</h1>
<div id="status">connecting…</div>
<h2>Recent requests <span class="muted" id="request-count"></span></h2>
<table id="requests">
  <thead><tr><th>time</th><th>request</th><th>status</th><th>answered by</th><th>fault</th><th>timings</th>
  <th>last message</th></tr></thead>
  <tbody></tbody>
</table>
<div class="grid">
<section>
<h2>Fixtures <span class="muted" id="fixture-count"></span></h2>
<table id="fixtures">
  <thead><tr><th>name</th><th>file</th><th class="num">turns</th><th class="num">hits</th></tr></thead>
  <tbody></tbody>
</table>
</section>
<section>
<h2>Scenarios</h2>
<table id="scenarios">
  <thead><tr><th>fixture</th><th class="num">turn</th><th class="num">plays</th><th>scenario</th></tr></thead>
  <tbody></tbody>
</table>
</section>
</div>
<script>
"use strict";
const MAX_ROWS = 200;
const requests = document.querySelector("#requests tbody");

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.appendChild(cell);
  return tr;
}

function clock(seconds) {
  if (typeof seconds !== "number") return "";
  const d = new Date(seconds * 1000);
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
    pad(d.getMilliseconds(), 3);
}

function lastMessage(body) {
  if (!body || typeof body !== "object" || !Array.isArray(body.messages) || !body.messages.length) return "";
  const message = body.messages[body.messages.length - 1];
  if (!message || typeof message !== "object") return "";
  const content = message.content;
  if (typeof content === "string") return (message.role || "") + ": " + content;
  return (message.role || "") + ": " + JSON.stringify(content);
}

function answeredBy(entry) {
  const td = el("td");
  if (entry.fixture) {
    let text = entry.fixture;
    if (entry.turn !== null && entry.turn !== undefined) text += " · turn " + entry.turn;
    if (entry.play !== null && entry.play !== undefined) text += " · play " + entry.play;
    td.appendChild(el("span", text));
  } else if (Array.isArray(entry.near_misses) && entry.near_misses.length) {
    td.appendChild(el("div", "no match; near misses:", "muted"));
    const list = el("ul", null, "near");
    for (const miss of entry.near_misses) list.appendChild(el("li", miss, "mono"));
    td.appendChild(list);
  } else {
    td.appendChild(el("span", "no match", "muted"));
  }
  if (entry.error && entry.error.code) td.appendChild(el("div", entry.error.code, "mono muted"));
  if (entry.worker !== undefined) td.appendChild(el("div", "worker " + entry.worker, "muted"));
  return td;
}

function timings(entry) {
  const t = entry.timings;
  if (!t || typeof t !== "object") return el("td", "");
  const parts = [];
  for (const key of Object.keys(t)) {
    const value = t[key];
    parts.push(key + " " + (typeof value === "number" ? value.toFixed(1) : JSON.stringify(value)));
  }
  return el("td", parts.join(", "), "mono");
}

function addRequest(entry) {
  const status = entry.status === null || entry.status === undefined ? "–" : entry.status;
  const tr = row([
    el("td", clock(entry.time), "mono"),
    el("td", (entry.method || "") + " " + (entry.path || ""), "mono"),
    el("td", status, "s" + String(status).charAt(0)),
    answeredBy(entry),
    el("td", entry.fault ? (typeof entry.fault === "string" ? entry.fault : JSON.stringify(entry.fault)) : "",
       "fault"),
    timings(entry),
    el("td", lastMessage(entry.body), "ask"),
  ]);
  requests.insertBefore(tr, requests.firstChild);
  while (requests.rows.length > MAX_ROWS) requests.deleteRow(requests.rows.length - 1);
  document.getElementById("request-count").textContent = "(" + requests.rows.length + " shown, newest first)";
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function showFixtures(data) {
  const rows = (data.fixtures || []).map((f) => row([
    el("td", f.name), el("td", f.file === null ? "added at run time" : f.file, f.file === null ? "muted" : "mono"),
    el("td", f.turns, "num"), el("td", f.hits, "num"),
  ]));
  fill(document.querySelector("#fixtures tbody"), rows);
  document.getElementById("fixture-count").textContent = "(" + rows.length + ")";
}

function showScenarios(data) {
  const items = data.scenarios || [];
  const rows = items.map((s) => row([
    el("td", s.fixture), el("td", s.turn, "num"), el("td", s.plays, "num"),
    el("td", s.steps === null ? "single reply" : s.steps + " steps, then " + s.then, s.steps === null ? "muted" : ""),
  ]));
  if (!rows.length) rows.push(row([el("td", "no turn played yet and no scenario loaded", "muted")]));
  fill(document.querySelector("#scenarios tbody"), rows);
}

function parse(event, show) {
  try { show(JSON.parse(event.data)); } catch (error) { console.warn("bad event", error); }
}

const status = document.getElementById("status");
const source = new EventSource("events");
source.addEventListener("open", () => { status.textContent = "live"; status.className = "live"; });
source.addEventListener("error", () => { status.textContent = "reconnecting…"; status.className = ""; });
source.addEventListener("request", (event) => parse(event, addRequest));
source.addEventListener("cleared", () => { requests.replaceChildren(); });
source.addEventListener("fixtures", (event) => parse(event, showFixtures));
source.addEventListener("scenarios", (event) => parse(event, showScenarios));
</script>
</body>
</html>
"""
