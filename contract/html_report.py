"""A :class:`RunResult` as one self-contained HTML file: verdict, checks, failures and timing plots.

The file holds everything it shows (inline CSS, inline SVG, no script, nothing fetched), so it opens
from a CI artifact with no network. The wording comes from :mod:`contract.report`, the redaction from
:mod:`contract.core.redaction`, as in every other report; every string from the server or the document is
escaped.

The plots are plain SVG drawn here, not by a plotting library: one such as matplotlib would add tens
of MB to the install for four small charts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

from .core.redaction import Redactor
from .report import (
    NOT_EXERCISED_NOTE,
    RERUN_CAPTION,
    WITNESS_CAPTION,
    curl_line,
    excerpt_lines,
    failure_kind,
    not_exercised,
    outcome_line,
    refusal_line,
    request_caption,
    request_json,
    request_origin,
    rerun_command,
    verdict_word,
)
from .results import FailureRecord, RunResult

_EXCERPT_CHARS = 800
_EVENT_IN_MESSAGE = re.compile(r"^event (\d+)\b")
_BYTE_IN_MESSAGE = re.compile(r"^byte (\d+)\b")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1em 1.5em;
color:#1d2430;background:#fff}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.6em 0 .5em;border-bottom:1px solid #d5d9e0}
h3{font-size:1em;margin:.2em 0}
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:700;letter-spacing:.04em}
.PASSED{background:#1e7d32}.FAILED{background:#b3261e}.INCONCLUSIVE{background:#a15c00}
.diagnosis{font-size:1.05em;margin:.4em 0}.meta{color:#4a5568}
pre{background:#f5f7fa;border:1px solid #e1e5eb;padding:.5em .7em;overflow-x:auto;white-space:pre-wrap;
word-break:break-all;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:.3em 0}
pre .hl{background:#ffe08a;display:block;outline:1px solid #d4a500}
table{border-collapse:collapse}th,td{padding:.2em .7em;border-bottom:1px solid #e1e5eb;text-align:right}
th:first-child,td:first-child{text-align:left}td.FAIL{color:#b3261e;font-weight:700}td.ok{color:#1e7d32}
td.not-exercised{color:#a15c00}
.failure{border:1px solid #e1e5eb;border-left:4px solid #b3261e;padding:.5em 1em;margin:1em 0}
.failure.document{border-left-color:#6b46c1}.blame{font-weight:700}
.plots{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fbfcfd;border:1px solid #e1e5eb}
svg text{font:11px system-ui,sans-serif;fill:#1d2430}svg .title{font-weight:700;font-size:12px}
svg .bar{fill:#3b6fb6}svg .axis{stroke:#4a5568}svg .dot{fill:#3b6fb6}svg .line{stroke:#c7ccd4}
"""

_WIDTH, _HEIGHT = 460, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 14, 30, 40


def html_text(result: RunResult) -> str:
    redactor = Redactor(result.secrets)
    word = verdict_word(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>contract-check {word}: {_e(redactor.text(result.url))}</title>",
        f"<style>{_CSS}</style></head><body>",
        _summary(result, redactor, word),
        _checks_table(result),
        _failures(result, redactor),
        _plots(result),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(html_text(result), encoding="utf-8")


# -- the top: verdict, diagnosis, seed and rerun -----------------------------------------------


def _summary(result: RunResult, redactor: Redactor, word: str) -> str:
    out = [
        '<header id="summary">',
        f'<h1><span class="verdict {word}">{word}</span> contract-check {_e(redactor.text(result.url))}</h1>',
        f'<p class="diagnosis">{_e(redactor.text(outcome_line(result)))}</p>',
    ]
    if result.aborted:
        out.append(f'<p class="diagnosis">run stopped early: {_e(redactor.text(result.aborted))}</p>')
    if result.hint:
        out.append(f'<p class="diagnosis">hint: {_e(redactor.text(result.hint))}</p>')
    out += [
        f'<p class="meta">spec {_e(redactor.text(result.spec_source))} &middot; profile '
        f"<b>{_e(result.profile)}</b> &middot; seed <b>{result.seed}</b> &middot; "
        f"{result.requests_sent} requests in {result.seconds:.1f} s (workers {result.workers}) &middot; "
        f"{_e(redactor.text(refusal_line(result)))}</p>",
        f"<p>{_e(RERUN_CAPTION)}:</p>",
        f'<pre id="rerun">{_e(redactor.text(rerun_command(result)))}</pre>',
        "</header>",
    ]
    return "\n".join(out)


# -- the checks table -------------------------------------------------------------------------


def anchor(record: FailureRecord, position: int | None = None) -> str:
    """The id of a failure's section: ``failure-<check>``, or ``defect-<n>-<check>`` for the document's."""
    name = _NOT_ID.sub("-", record.check)
    return f"failure-{name}" if position is None else f"defect-{position}-{name}"


def _checks_table(result: RunResult) -> str:
    rows = []
    for name, stats in result.stats.items():
        verdict = result.verdict(name)
        records = result.failures_for(name)
        label = f'<a href="#{anchor(records[0])}">{_e(name)}</a>' if records else _e(name)
        rows.append(
            f'<tr data-check="{_e(name)}"><td>{label}</td><td>{stats.judged}</td><td>{stats.passed}</td>'
            f'<td>{stats.failed}</td><td class="{verdict.replace(" ", "-")}">{verdict}</td></tr>'
        )
    for record in result.failures:  # failures of no selected check (a transport failure)
        if record.check not in result.stats:
            rows.append(
                f'<tr data-check="{_e(record.check)}"><td><a href="#{anchor(record)}">{_e(record.check)}</a></td>'
                '<td>-</td><td>-</td><td>-</td><td class="FAIL">FAIL</td></tr>'
            )
    note = ""
    unexercised = not_exercised(result)
    if unexercised:
        note = f'<p class="meta">{_e(NOT_EXERCISED_NOTE)}: {_e(", ".join(unexercised))}</p>'
    return (
        '<h2>Checks</h2><table id="checks"><thead><tr><th>check</th><th>judged</th><th>passed</th>'
        "<th>failed</th><th>result</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>" + note
    )


# -- failures ---------------------------------------------------------------------------------


def offending_event(record: FailureRecord) -> int | None:
    """The index of the event a failure points at (``event 3: ...``, or the event holding ``byte N``)."""
    match = _EVENT_IN_MESSAGE.match(record.message)
    if match:
        return int(match.group(1))
    match = _BYTE_IN_MESSAGE.match(record.message)
    events = record.exchange.events
    if match and events:
        offset = int(match.group(1))
        before = [index for index, event in enumerate(events) if event.offset <= offset]
        return before[-1] if before else None
    return None


def _failures(result: RunResult, redactor: Redactor) -> str:
    out = []
    if result.failures:
        out.append(f"<h2>Failures ({len(result.failures)})</h2>")
        out += [_failure(record, redactor, anchor(record)) for record in result.failures]
    if result.document_defects:
        out.append(f"<h2>Defects of the document ({len(result.document_defects)}): not the server&#x27;s fault</h2>")
        out += [
            _failure(record, redactor, anchor(record, position))
            for position, record in enumerate(result.document_defects, start=1)
        ]
    return "\n".join(out)


def _failure(record: FailureRecord, redactor: Redactor, ident: str) -> str:
    document = record.blame == "document"
    blame = (
        "the document is to blame: it cannot tell this apart"
        if document
        else "the server is to blame: it broke the contract"
    )
    out = [
        f'<section class="failure{" document" if document else ""}" id="{ident}">',
        f"<h3>{failure_kind(record)}: {_e(record.check)} <small>({_e(request_origin(record))})</small></h3>",
        f'<p class="blame">{blame}</p>',
        f"<p>{_e(redactor.text(record.message))}</p>",
    ]
    if record.expected:
        out.append(f"<p>expected: <code>{_e(redactor.text(record.expected))}</code></p>")
    if record.seen:
        out.append(f"<p>seen: <code>{_e(redactor.text(record.seen))}</code></p>")
    if record.witness is not None:
        witness = json.dumps(redactor.value(record.witness), indent=2, ensure_ascii=False, default=str)
        out += [f"<p>{_e(WITNESS_CAPTION)}:</p>", f'<pre class="witness">{_e(witness)}</pre>']
    out += [
        f"<p>{_e(request_caption(record))}:</p>",
        f'<pre class="request">{_e(request_json(record.request, redactor))}</pre>',
        *(
            []
            if record.then is None
            else [
                "<p>sent next on the same connection, and left unanswered:</p>",
                f'<pre class="request">{_e(request_json(record.then, redactor))}</pre>',
            ]
        ),
        "<p>reproduce:</p>",
        f'<pre class="curl">{_e(curl_line(record.request, redactor, record.then))}</pre>',
        "<p>response:</p>",
        f'<pre class="response">{_excerpt(record, redactor)}</pre>',
        "</section>",
    ]
    return "\n".join(out)


def _excerpt(record: FailureRecord, redactor: Redactor) -> str:
    """The response excerpt, the offending event's lines marked."""
    offending = offending_event(record)
    lines = []
    for line, event in excerpt_lines(record.exchange):
        text = _e(redactor.text(line[:_EXCERPT_CHARS]))
        lines.append(f'<span class="hl">{text}</span>' if offending is not None and event == offending else text + "\n")
    return "".join(lines)


# -- timing plots -----------------------------------------------------------------------------


def _plots(result: RunResult) -> str:
    samples, counts = result.samples, result.sample_counts
    plots = [
        histogram(samples.get("ttfb_ms", []), "Time to first byte", "ms", counts.get("ttfb_ms", 0), "responses"),
        histogram(samples.get("ttft_ms", []), "Time to first token", "ms", counts.get("ttft_ms", 0), "responses"),
        histogram(samples.get("gap_ms", []), "Gaps between stream events", "ms", counts.get("gap_ms", 0), "gaps"),
        bars(
            [phase.name for phase in result.phases],
            [phase.seconds for phase in result.phases],
            "Time per phase",
            "s",
            f"{len(result.phases)} phases, {sum(phase.requests for phase in result.phases)} requests",
        ),
    ]
    if result.timelines:
        plots.append(timeline(result.timelines))
    return '<h2>Timings</h2><div class="plots" id="plots">\n' + "\n".join(plots) + "\n</div>"


def _svg(kind: str, title: str, body: list[str]) -> str:
    return (
        f'<svg class="plot" data-plot="{kind}" width="{_WIDTH}" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img">'
        f'<title>{_e(title)}</title><text class="title" x="{_LEFT}" y="18">{_e(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _axes(x_label: str, y_max: float, y_label: str) -> list[str]:
    bottom, right = _HEIGHT - _BOTTOM, _WIDTH - _RIGHT
    return [
        f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end">{_num(y_max)}</text>',
        f'<text x="{_LEFT - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<text x="{(_LEFT + right) / 2}" y="{_HEIGHT - 6}" text-anchor="middle">{_e(x_label)}</text>',
        f'<text x="12" y="{(_TOP + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(_TOP + bottom) / 2})">{_e(y_label)}</text>',
    ]


def histogram(values: Sequence[float], name: str, unit: str, count: int, what: str) -> str:
    """A histogram of ``values``; the title says how many were measured (``count``, before thinning)."""
    title = f"{name} ({unit}), {count} {what}"
    if not values:
        return _svg("histogram", title, [_empty()])
    low, high = min(values), max(values)
    bins = max(1, min(30, math.ceil(math.sqrt(len(values)))))
    width = (high - low) / bins or 1.0
    heights = [0] * bins
    for value in values:
        heights[min(bins - 1, int((value - low) / width))] += 1
    tallest = max(heights)
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    step = plot_w / bins
    body = _axes(unit, tallest, "count" if len(values) == count else "count (sampled)")
    for index, height in enumerate(heights):
        if height:
            h = plot_h * height / tallest
            body.append(
                f'<rect class="bar" x="{_LEFT + index * step + 0.5:.1f}" y="{_TOP + plot_h - h:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{h:.1f}"><title>{_num(low + index * width)}-'
                f"{_num(low + (index + 1) * width)} {unit}: {height}</title></rect>"
            )
    bottom = _HEIGHT - _BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        x = _LEFT + plot_w * fraction
        body.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{_num(low + (high - low) * fraction)}</text>'
        )
    return _svg("histogram", title, body)


def bars(labels: Sequence[str], values: Sequence[float], name: str, unit: str, counts: str) -> str:
    """One bar per label; the title carries the unit and ``counts``."""
    title = f"{name} ({unit}), {counts}"
    if not values:
        return _svg("bars", title, [_empty()])
    tallest = max(max(values), 1e-9)
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    step = plot_w / len(values)
    body = _axes("phase", tallest, unit)
    for index, (label, value) in enumerate(zip(labels, values)):
        h = plot_h * value / tallest
        x = _LEFT + index * step
        body += [
            f'<rect class="bar" x="{x + step * 0.15:.1f}" y="{_TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h:.1f}"><title>{_e(label)}: {value:.2f} {unit}</title></rect>',
            f'<text x="{x + step / 2:.1f}" y="{_HEIGHT - _BOTTOM + 14}" text-anchor="middle">{_e(label)}</text>',
            f'<text x="{x + step / 2:.1f}" y="{_TOP + plot_h - h - 3:.1f}" text-anchor="middle">{value:.2f}</text>',
        ]
    return _svg("bars", title, body)


def timeline(streams: Sequence[Sequence[float]]) -> str:
    """One row per stream, a dot where each event arrived (ms after the request was sent)."""
    title = f"Event arrivals (ms), {len(streams)} streams, {sum(len(s) for s in streams)} events"
    end = max((max(s) for s in streams if s), default=0.0) or 1.0
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    row = plot_h / max(len(streams), 1)
    bottom = _HEIGHT - _BOTTOM
    body = [
        f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{_WIDTH - _RIGHT}" y2="{bottom}"/>',
        f'<text x="{(_LEFT + _WIDTH - _RIGHT) / 2}" y="{_HEIGHT - 6}" text-anchor="middle">ms</text>',
        f'<text x="{_LEFT}" y="{bottom + 14}" text-anchor="middle">0</text>',
        f'<text x="{_WIDTH - _RIGHT}" y="{bottom + 14}" text-anchor="end">{_num(end)}</text>',
    ]
    for index, arrivals in enumerate(streams):
        y = _TOP + row * (index + 0.5)
        body += [
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">#{index + 1}</text>',
            f'<line class="line" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}"/>',
        ]
        body += [f'<circle class="dot" cx="{_LEFT + plot_w * t / end:.1f}" cy="{y:.1f}" r="2.5"/>' for t in arrivals]
    return _svg("timeline", title, body)


def _empty() -> str:
    return f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle">nothing measured</text>'


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _e(text: str) -> str:
    return escape(text, quote=True)
