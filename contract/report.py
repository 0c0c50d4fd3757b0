"""Turn a :class:`RunResult` into text for people (console), for CI (JUnit XML) and for tools (JSON).

Every output goes through one redaction step (:mod:`contract.core.redaction`): credential
headers are replaced, and their values are scrubbed from every other string too,
in case a server echoes them back in a body.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Any

from .core.exchange import NOT_JSON, Exchange, PreparedRequest
from .core.redaction import Redactor
from .diagnosis import most_common
from .rerun import command_line
from .results import FailureRecord, PhaseSummary, RunResult

_EXCERPT_CHARS = 800
_EXCERPT_EVENTS = 8
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what a terminal would act on, not show
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# -- pieces of a failure block -------------------------------------------------------------------


def curl_line(request: PreparedRequest, redactor: Redactor | None = None, then: PreparedRequest | None = None) -> str:
    """A shell command that sends the same request and prints the stream as it arrives.

    With ``then``, the command sends that request next on the same connection (curl reuses it across
    ``--next``), as a connection that fails after an answer needs.
    """
    redactor = redactor or Redactor()
    if then is not None:
        first, second = _curl_request(request, redactor, piped=False), _curl_request(then, redactor, piped=False)
        return " ".join(["curl", "-N", "-sS", *first, "--next", "-N", "-sS", *second])
    try:
        request.raw_body.decode("utf-8")
    except UnicodeDecodeError:
        escaped = "".join(f"\\x{byte:02x}" for byte in request.raw_body)
        parts = _curl_request(request, redactor, piped=True)
        return f"printf '%b' {shlex.quote(escaped)} | " + " ".join(["curl", "-N", "-sS", *parts])
    return " ".join(["curl", "-N", "-sS", *_curl_request(request, redactor, piped=False)])


def _curl_request(request: PreparedRequest, redactor: Redactor, piped: bool) -> list[str]:
    """curl's arguments for one request: method, URL, headers and the body (from stdin when ``piped``)."""
    parts = ["-X", request.method, shlex.quote(redactor.text(request.url))]
    for name, value in redactor.headers(request.headers).items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if piped:
        return parts + ["--data-binary", "@-"]
    try:
        body = request.raw_body.decode("utf-8")
    except UnicodeDecodeError:  # a second body cannot come from stdin too: bash's $'...' holds the bytes
        return parts + ["--data-binary", "$'" + "".join(f"\\x{byte:02x}" for byte in request.raw_body) + "'"]
    return parts + ["--data-raw", shlex.quote(redactor.text(body))]


def request_json(request: PreparedRequest, redactor: Redactor | None = None) -> str:
    redactor = redactor or Redactor()
    if request.body is not None:
        return redactor.text(json.dumps(request.body, indent=2, ensure_ascii=False))
    return redactor.text(request.raw_body.decode("utf-8", errors="backslashreplace"))


def response_excerpt(exchange: Exchange, redactor: Redactor | None = None) -> str:
    """The start of what came back: status line, the first events or body bytes, problems."""
    redactor = redactor or Redactor()
    return redactor.text("\n".join(line[:_EXCERPT_CHARS] for line, _ in excerpt_lines(exchange)))


def excerpt_lines(exchange: Exchange) -> list[tuple[str, int | None]]:
    """The lines of :func:`response_excerpt` (not yet redacted), each with the index of the event it shows."""
    lines: list[tuple[str, int | None]] = [
        (
            f"HTTP {exchange.status if exchange.status is not None else '-'}"
            + (f"  content-type: {exchange.content_type}" if exchange.content_type else ""),
            None,
        )
    ]
    if exchange.is_stream:
        events = exchange.events
        # The start and the end of a long stream: most stream defects show at one or the other.
        head, tail = (
            (events, [])
            if len(events) <= _EXCERPT_EVENTS
            else (events[: _EXCERPT_EVENTS // 2], events[-(_EXCERPT_EVENTS // 2) :])
        )
        for index, event in enumerate(head):
            lines.extend((f"data: {part}", index) for part in event.data.split("\n"))
        if tail:
            lines.append((f"... {len(events) - len(head) - len(tail)} more events", None))
        for index, event in enumerate(tail, start=len(events) - len(tail)):
            lines.extend((f"data: {part}", index) for part in event.data.split("\n"))
        for problem in exchange.sse_problems[:5]:
            lines.append((f"! SSE {problem.kind}: {problem}", None))
    elif exchange.body:
        text = exchange.body.decode("utf-8", errors="backslashreplace")
        lines.append((text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + " ...", None))
    if exchange.transport_error:
        lines.append((f"! transport: {exchange.transport_error}", None))
    timings = exchange.timings
    lines.append(
        (
            "timings: "
            + ", ".join(
                f"{name} {value:.1f} ms"
                for name, value in (("ttfb", timings.ttfb_ms), ("ttft", timings.ttft_ms), ("total", timings.total_ms))
                if value is not None
            ),
            None,
        )
    )
    return lines


NOT_EXERCISED_NOTE = "not exercised (judged no exchange, so they prove nothing)"
WITNESS_CAPTION = "witness (an instance the document cannot judge, from the lint)"


def failure_kind(record: FailureRecord) -> str:
    """``DOCUMENT DEFECT`` (the document is to blame) or ``FAILED`` (the server is)."""
    return "DOCUMENT DEFECT" if record.blame == "document" else "FAILED"


def request_origin(record: FailureRecord) -> str:
    """``"generated request, breaks max_tokens"``: which phase sent it and, if negative, what it breaks."""
    broken = record.request.broken_rule
    return f"{record.phase} request" + (f", breaks {broken}" if broken else "")


def request_caption(record: FailureRecord) -> str:
    """``minimal request``, or a word that the request is shown as sent because it was never shrunk."""
    return "request (as sent; not shrunk)" if record.as_sent else "minimal request"


def failure_block(record: FailureRecord, redactor: Redactor | None = None) -> str:
    """Everything needed to see and reproduce one failure, as plain text."""
    redactor = redactor or Redactor()
    lines = [
        f"{failure_kind(record)}: {record.check}  ({request_origin(record)})",
        f"  {redactor.text(record.message)}",
    ]
    if record.expected:
        lines.append(f"  expected: {redactor.text(record.expected)}")
    if record.seen:
        lines.append(f"  seen:     {redactor.text(record.seen)}")
    if record.witness is not None:
        lines.append(f"  {WITNESS_CAPTION}:")
        lines.append(_indent(redactor.text(json.dumps(record.witness, indent=2, ensure_ascii=False, default=str))))
    lines.append(f"  {request_caption(record)}:")
    lines.append(_indent(request_json(record.request, redactor)))
    if record.then is not None:
        lines.append("  sent next on the same connection, and left unanswered:")
        lines.append(_indent(request_json(record.then, redactor)))
    lines.append("  reproduce:")
    lines.append(_indent(curl_line(record.request, redactor, record.then)))
    lines.append("  response:")
    lines.append(_indent(response_excerpt(record.exchange, redactor)))
    return printable("\n".join(lines))


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# -- console ----------------------------------------------------------------------------------


class ConsoleProgress:
    """A progress callback: one line when each phase starts and ends, and a live count in between.

    On a terminal the count is redrawn in place a few times a second; otherwise (CI logs) a line is
    written every ``interval`` seconds, so a long run against a paced server never looks hung.
    """

    def __init__(self, stream: IO[str], interval: float = 5.0, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.interval = 0.25 if self.live else interval
        self._lock = threading.Lock()
        self._running: dict[str, tuple[PhaseSummary, float]] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, phase: PhaseSummary, finished: bool) -> None:
        with self._lock:
            if finished:
                self._running.pop(phase.name, None)
                self._write(
                    f"  {phase.name:<10} {phase.requests:>5} requests  {phase.failing_checks} failing "
                    f"check(s)  {phase.seconds:.1f} s"
                )
            else:
                self._running[phase.name] = (phase, time.monotonic())
                self._write(f"  {phase.name:<10} running...")
                if self._ticker is None:
                    self._ticker = threading.Thread(target=self._tick, name="contract-progress", daemon=True)
                    self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                running = list(self._running.values())
                if not running:
                    continue
                line = "; ".join(
                    f"{phase.name}: {phase.requests} requests, {phase.failing_checks} failing "
                    f"check(s), {time.monotonic() - began:.0f} s"
                    for phase, began in running
                )
                if self.live:
                    self.stream.write(f"\r\033[K  {line}")
                    self.stream.flush()
                else:
                    self._write(f"  ... {line}")

    def _write(self, line: str) -> None:
        self.stream.write(("\r\033[K" if self.live else "") + line + "\n")
        self.stream.flush()


def printable(text: str) -> str:
    """Control characters from a server (an escape sequence, a bell) shown as ``\\x1b``, never sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def console_text(result: RunResult) -> str:
    """The report for people: the verdict first and last, the failures, the checks table between."""
    redactor = Redactor(result.secrets)
    verdict = redactor.text(verdict_line(result))
    out: list[str] = [verdict]
    if result.hint:
        out.append(f"hint: {redactor.text(result.hint)}")
    out += [
        f"contract-check {redactor.text(result.url)}  spec {result.spec_source}  profile {result.profile}"
        f"  seed {result.seed}",
        "",
    ]
    for record in result.failures:
        out += [failure_block(record, redactor), ""]
    if result.document_defects:
        out.append(f"{len(result.document_defects)} defect(s) of the document (not the server's fault):")
        out.append("")
        for record in result.document_defects:
            out += [failure_block(record, redactor), ""]
    if result.aborted:
        out += [f"run stopped early: {redactor.text(result.aborted)}", ""]
    out += [summary_table(result), verdict]
    return printable("\n".join(out)) + "\n"


def summary_table(result: RunResult, rerun: str | None = None) -> str:
    """One row per check: exchanges judged, passed, failed, and the verdict (``not exercised`` if none judged);
    then the counts and the rerun line (``rerun``, or the contract-check command)."""
    width = max([len(name) for name in result.stats] + [5])
    lines = [f"{'check':<{width}}  {'judged':>7}  {'passed':>7}  {'failed':>7}  result"]
    for name, stats in result.stats.items():
        lines.append(
            f"{name:<{width}}  {stats.judged:>7}  {stats.passed:>7}  {stats.failed:>7}  {result.verdict(name)}"
        )
    timing = "  ".join(
        f"{name.removesuffix('_ms')} p50 {_ms(v['p50'])} p95 {_ms(v['p95'])}" for name, v in result.timings.items()
    )
    unexercised = not_exercised(result)
    lines += [
        "",
        f"{result.requests_sent} requests in {result.seconds:.1f} s (workers {result.workers}); {refusal_line(result)}",
        f"timings (ms): {timing}",
    ]
    if unexercised:
        lines.append(f"{NOT_EXERCISED_NOTE}: {', '.join(unexercised)}")
    counts = f"{len(result.failures)} failing check(s), {len(result.document_defects)} document defect(s)"
    lines.append(f"{counts}; seed {result.seed}")
    lines.append(f"{RERUN_CAPTION}: {rerun or rerun_command(result)}")
    return "\n".join(lines)


def verdict_line(result: RunResult) -> str:
    """The run's verdict in one line: ``PASSED``, ``FAILED: check, check`` or ``INCONCLUSIVE: why``.

    A run that stopped early without a failing check is FAILED too: it did not finish its requests.
    """
    if result.diagnosis:
        return f"INCONCLUSIVE: {result.diagnosis}"
    if result.ok:
        return "PASSED"
    if result.failed_checks:
        return "FAILED: " + ", ".join(result.failed_checks)
    return f"FAILED: run stopped early: {result.aborted}"


def verdict_word(result: RunResult) -> str:
    """``PASSED``, ``FAILED`` or ``INCONCLUSIVE`` (the run proved nothing; see :mod:`contract.diagnosis`)."""
    if result.diagnosis:
        return "INCONCLUSIVE"
    return "PASSED" if result.ok else "FAILED"


def outcome_line(result: RunResult) -> str:
    """The run in one line: the diagnosis when it proved nothing, else its failures and document defects."""
    if result.diagnosis:
        return f"INCONCLUSIVE: {result.diagnosis}"
    return f"{len(result.failures)} failing check(s), {len(result.document_defects)} document defect(s)"


RERUN_CAPTION = "rerun (the same requests, judged the same way)"


def rerun_command(result: RunResult) -> str:
    """The command that sends the same requests again: seed, document, profile, examples, phases, checks,
    deadline and headers (their values as shell variables, never shown)."""
    return command_line(result.url, result.seed, result.rerun)


def not_exercised(result: RunResult) -> list[str]:
    return [name for name in result.stats if result.verdict(name) == "not exercised"]


def refusal_line(result: RunResult) -> str:
    """How many schema-valid requests were refused with a documented 4xx, and the commonest refusals."""
    line = f"{result.refused_valid} schema-valid request(s) refused with a documented 4xx"
    if result.refusals:
        line += f" (most common: {most_common(result.refusals)})"
    return line


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_console(result: RunResult, out: IO[str]) -> None:
    out.write(console_text(result))
    out.flush()


# -- JSON -------------------------------------------------------------------------------------


def result_dict(result: RunResult) -> dict[str, Any]:
    redactor = Redactor(result.secrets)
    return {
        "url": redactor.text(result.url),
        "spec": result.spec_source,
        "profile": result.profile,
        "seed": result.seed,
        "ok": result.ok,
        "verdict": redactor.text(verdict_line(result)),
        "rerun": rerun_command(result),
        "diagnosis": _maybe(redactor, result.diagnosis),
        "hint": _maybe(redactor, result.hint),
        "checks": result.checks,
        "requests_sent": result.requests_sent,
        "refused_valid": result.refused_valid,
        "refusals": _answer_counts(result.refusals),
        "valid_answers": _answer_counts(result.valid_answers),
        "seconds": result.seconds,
        "workers": result.workers,
        "aborted": _maybe(redactor, result.aborted),
        "timings": result.timings,
        "phases": [vars(phase) for phase in result.phases],
        "stats": {
            name: {
                "judged": stats.judged,
                "passed": stats.passed,
                "failed": stats.failed,
                "result": result.verdict(name),
            }
            for name, stats in result.stats.items()
        },
        "failures": [_record_dict(r, redactor) for r in result.failures],
        "document_defects": [_record_dict(r, redactor) for r in result.document_defects],
    }


def _maybe(redactor: Redactor, text: str | None) -> str | None:
    return None if text is None else redactor.text(text)


def _answer_counts(answers: Any) -> list[dict[str, Any]]:
    return [
        {"status": answer.status, "code": answer.code, "count": count}
        for answer, count in sorted(answers.items(), key=lambda item: (-item[1], str(item[0])))
    ]


def _record_dict(record: FailureRecord, redactor: Redactor) -> dict[str, Any]:
    request = record.request
    exchange = record.exchange
    return {
        "check": record.check,
        "blame": record.blame,
        "phase": record.phase,
        "message": redactor.text(record.message),
        "expected": redactor.text(record.expected),
        "seen": redactor.text(record.seen),
        "witness": redactor.value(record.witness),
        "as_sent": record.as_sent,
        "request": {
            "method": request.method,
            "url": redactor.text(request.url),
            "headers": redactor.headers(request.headers),
            "body": redactor.value(request.body) if request.body is not None else None,
            "raw_body": None if request.body is not None else request_json(request, redactor),
            "kind": request.kind,
            "broken_rule": request.broken_rule,
        },
        "then": None if record.then is None else redactor.value(record.then.body),
        "curl": curl_line(request, redactor, record.then),
        "response": {
            "status": exchange.status,
            "content_type": exchange.content_type,
            "json": None if exchange.json is NOT_JSON else redactor.value(exchange.json),
            "events": len(exchange.events),
            "transport_error": _maybe(redactor, exchange.transport_error),
            "excerpt": response_excerpt(exchange, redactor),
            "timings": vars(exchange.timings),
        },
    }


def write_json(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(
        json.dumps(result_dict(result), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )


# -- JUnit XML --------------------------------------------------------------------------------


def junit_tree(result: RunResult) -> ET.ElementTree:
    """One testsuite, one testcase per check; a failing check carries its block(s) as the failure text."""
    redactor = Redactor(result.secrets)
    failing = [name for name in result.stats if result.failures_for(name)]
    extra = sorted({f.check for f in result.failures} - set(result.stats))  # e.g. a transport failure
    names = list(result.stats) + extra
    unexercised = [name for name in result.stats if result.verdict(name) == "not exercised"]
    suite = ET.Element(
        "testsuite",
        name="contract-check",
        tests=str(len(names) + bool(result.diagnosis)),
        failures=str(len(set(failing) | set(extra)) + bool(result.diagnosis)),
        errors="0",
        skipped=str(len(unexercised)),
        time=f"{result.seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("url", result.url),
        ("spec", result.spec_source),
        ("profile", result.profile),
        ("seed", str(result.seed)),
        ("requests_sent", str(result.requests_sent)),
        ("refused_valid", str(result.refused_valid)),
    ):
        ET.SubElement(properties, "property", name=key, value=redactor.text(value))
    if result.diagnosis:
        case = ET.SubElement(suite, "testcase", classname="contract", name="run_is_conclusive", time="0")
        ET.SubElement(
            case, "failure", message=_xml_safe(redactor.text(result.diagnosis)[:500]), type="inconclusive"
        ).text = _xml_safe(redactor.text(result.diagnosis))
    for name in names:
        case = ET.SubElement(suite, "testcase", classname="contract", name=name, time="0")
        if name in unexercised:
            ET.SubElement(case, "skipped", message="not exercised: the check judged no exchange in this run")
        records = result.failures_for(name)
        if records:
            failure = ET.SubElement(
                case, "failure", message=_xml_safe(redactor.text(records[0].message)[:500]), type=name
            )
            failure.text = _xml_safe("\n\n".join(failure_block(r, redactor) for r in records))
    notes = [failure_block(r, redactor) for r in result.document_defects]
    if result.aborted:
        notes.append(f"run stopped early: {redactor.text(result.aborted)}")
    if notes:
        ET.SubElement(suite, "system-out").text = _xml_safe("\n\n".join(notes))
    ET.indent(suite)
    return ET.ElementTree(suite)


def write_junit(result: RunResult, path: str | Path) -> None:
    junit_tree(result).write(str(path), encoding="utf-8", xml_declaration=True)


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot hold some characters (NUL, most C0 controls); show them escaped instead."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
