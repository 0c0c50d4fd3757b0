"""``contract-check``: lint the contract document, export it, or check a live server against it.

Exit codes: 0 everything holds, 1 a check (or the lint) found defects, 2 a usage
or input error (bad file, bad document, bad URL, unreachable server, a failed TLS
handshake), always one line. Credentials in the URL never show: ``user:***@``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import ssl
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO
from urllib.parse import SplitResult, urlsplit

from .core.about import VersionAction
from .core.profiles import ProfileError, add_profile_arguments, profile_from_args
from .core.redaction import redact_url, url_secrets
from .errors import Unreachable, UsageError
from .headers import parse_header
from .urls import base_url


class _Parser(argparse.ArgumentParser):
    """argparse that keeps its one-line error and exit code 2, without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"contract-check: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="contract-check", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action=VersionAction, program="contract-check")
    parser.add_argument("url", nargs="?", help="base URL of the server under test (http://host:port or .../v1)")
    parser.add_argument("--spec", default=None, help="OpenAPI document (default: the bundled openapi.yaml)")
    parser.add_argument("--lint", action="store_true", help="report defects of the document itself and exit")
    parser.add_argument(
        "--export-spec",
        default=None,
        metavar="VERSION",
        help="write the document in OpenAPI VERSION form (3.2: streams by itemSchema) and exit",
    )
    parser.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="where --export-spec writes (default: standard output)"
    )
    add_profile_arguments(parser)
    run = parser.add_argument_group("checking a server (URL mode)")
    run.add_argument(
        "--max-examples",
        type=_positive_int,
        default=50,
        metavar="N",
        help="requests generated per phase before failures are reduced (default 50)",
    )
    run.add_argument(
        "--phases",
        default=None,
        metavar="A,B",
        help="run only these phases, in this order (default: coverage,schema,realistic,negative)",
    )
    run.add_argument(
        "--seed", type=int, default=None, metavar="N", help="repeat a run exactly (default: random, printed)"
    )
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run the phases side by side and send stream/non-stream pairs at once (default 1)",
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="overall deadline per request in seconds (default 10)",
    )
    run.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header with every request (repeatable); secrets are redacted in reports",
    )
    run.add_argument("--checks", default=None, metavar="A,B", help="run only these checks")
    run.add_argument("--exclude-checks", default=None, metavar="C,D", help="skip these checks")
    run.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, so the checks it adds with @contract.check run too (repeatable)",
    )
    run.add_argument(
        "--accept-valid",
        action="store_true",
        help="also fail schema-valid requests refused with a 4xx (check valid_request_accepted)",
    )
    run.add_argument(
        "--max-ttft-ms",
        type=_positive_float,
        default=None,
        metavar="X",
        help="fail a response whose first token takes longer than X ms (check ttft_within_limit)",
    )
    run.add_argument("--junit", default=None, metavar="PATH", help="write a JUnit XML report")
    run.add_argument("--json", default=None, metavar="PATH", help="write the result as JSON")
    run.add_argument(
        "--html", default=None, metavar="PATH", help="write a self-contained HTML report (verdict, failures, timings)"
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def hypothesis_home() -> Path:
    """Where Hypothesis keeps its caches for a contract-check run: the user's cache folder, not the
    working directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``chatstream-testkit/hypothesis``).
    The run itself keeps no example database: every run draws afresh from its seed."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chatstream-testkit" / "hypothesis"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(hypothesis_home())
    try:
        args.chosen_profile = profile_from_args(args)
    except ProfileError as exc:
        sys.stderr.write(f"contract-check: error: {exc}\n")
        return 2
    if args.output is not None and args.export_spec is None:
        sys.stderr.write("contract-check: error: -o/--output needs --export-spec\n")
        return 2
    if args.export_spec is not None:
        if args.lint or args.url:
            sys.stderr.write("contract-check: error: --export-spec goes alone: no --lint, no URL\n")
            return 2
        from .export import export_main

        return export_main(args.spec, args.export_spec, args.output, sys.stdout, args.chosen_profile)
    if args.lint:
        from .lint import lint_main

        return lint_main(args.spec, sys.stdout, args.chosen_profile)
    if not args.url:
        sys.stderr.write("contract-check: error: give a URL to check, or --lint\n")
        return 2
    return runner_main(args, sys.stdout)


def check_tls(url: str, timeout: float) -> None:
    """For ``https://``, one TLS handshake before the run: a plain-HTTP port (or a certificate that is not
    trusted) is an unreachable server, exit 2 with words that say why, not a run of failed requests."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return
    try:
        connection = _connect(parts, timeout)
    except OSError:
        return  # nothing listens: the run's own probe says so
    import httpx

    from .core.http_errors import tls_failure

    context = httpx.create_ssl_context()  # what the run's requests will use
    try:
        with connection, context.wrap_socket(connection, server_hostname=parts.hostname):
            return
    except (ssl.SSLError, OSError) as exc:
        words = tls_failure(exc) or (
            "TLS handshake timed out" if isinstance(exc, TimeoutError) else f"TLS handshake failed: {exc}"
        )
        raise Unreachable(f"cannot reach {redact_url(url)}: {words}") from None


def _connect(parts: SplitResult, timeout: float) -> socket.socket:
    return socket.create_connection((parts.hostname or "", parts.port or 443), timeout=min(timeout, 5.0))


def import_check_modules(names: Sequence[str]) -> None:
    """Import the modules named by ``--import``, so the checks they add with ``@contract.check`` run too.

    The working directory is searched first, as ``python -m`` would, since that is where a user's
    own checks usually sit.
    """
    if names and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UsageError(f"--import {name}: {exc}") from None


def runner_main(args: argparse.Namespace, out: IO[str]) -> int:
    """``contract-check URL``: run, print the report, write JUnit / JSON; the exit code."""
    from .core.spec import SpecError
    from .report import ConsoleProgress, write_console, write_json, write_junit
    from .runner import PHASES, run

    progress = ConsoleProgress(sys.stderr)
    try:
        import_check_modules(args.imports or [])
        headers = dict(parse_header(h) for h in (args.header or []))
        for option, path in (("--junit", args.junit), ("--json", args.json), ("--html", args.html)):
            if path and not Path(path).resolve().parent.is_dir():
                raise UsageError(f"cannot write report {option} {path}: no such directory")
        base_url(args.url)  # before the handshake: a URL urllib cannot split is one line
        check_tls(args.url, args.timeout)
        result = run(
            args.url,
            spec=args.spec,
            profile=getattr(args, "chosen_profile", None),
            max_examples=args.max_examples,
            seed=args.seed,
            workers=args.workers,
            timeout=args.timeout,
            headers=headers,
            checks=_split(args.checks),
            exclude_checks=_split(args.exclude_checks),
            accept_valid=args.accept_valid,
            max_ttft_ms=args.max_ttft_ms,
            progress=progress,
            phases=PHASES if args.phases is None else (_split(args.phases) or []),
        )
        result.rerun = replace(result.rerun, imports=tuple(args.imports or ()))
        result.secrets = (*result.secrets, *url_secrets(args.url))  # a server may echo the URL's password
    except (UsageError, SpecError) as exc:
        sys.stderr.write(f"contract-check: error: {redact_url(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("contract-check: interrupted\n")
        return 130
    finally:
        progress.close()
    write_console(result, out)
    try:
        if args.junit:
            write_junit(result, args.junit)
        if args.json:
            write_json(result, args.json)
        if args.html:
            from .html_report import write_html

            write_html(result, args.html)
    except OSError as exc:
        sys.stderr.write(f"contract-check: error: cannot write report: {exc.strerror or exc}: {exc.filename or ''}\n")
        return 2
    return 0 if result.ok else 1


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
