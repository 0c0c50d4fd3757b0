"""``mockserver``: serve fixture conversations on a loopback port.

Every user mistake (a missing folder, a broken fixture, a bad flag, a port in
use) ends with one line on stderr and exit code 2, never a traceback, so a CI
log shows the cause in its last line.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from contract.core.about import VersionAction
from contract.core.profiles import Profile, ProfileError, add_profile_arguments, profile_from_args

from .faults import FAULT_TYPES, parse_fault_types
from .recording.upstream import API_KEY_VARIABLE, Upstream, upstream_headers
from .serve import protocol_options
from .settings import Settings, SettingsError
from .turns import Pacing, PacingError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"mockserver: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mockserver",
        description="Replay fixture conversations as an OpenAI-compatible streaming chat-completion server.",
        epilog="mockserver record --upstream URL: record fixtures from a live server (mockserver record --help).",
    )
    parser.add_argument("--version", action=VersionAction, program="mockserver")
    parser.add_argument(
        "--fixtures",
        type=Path,
        metavar="DIR",
        help="folder of fixture conversations (YAML or JSON, sub-folders too); "
        "default: the bundled conversations, with a fallback for any other request",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free one (default 8000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice: ids, jitter, faults")
    parser.add_argument("--ttft-ms", type=float, metavar="MS", help="time to first token (default 250)")
    parser.add_argument("--tokens-per-second", type=float, metavar="N", help="token rate (default 40)")
    parser.add_argument("--jitter", type=float, metavar="X", help="relative spread of each delay (default 0.2)")
    parser.add_argument("--no-delay", action="store_true", help="send every chunk at once (fast tests)")
    parser.add_argument(
        "--max-body",
        type=int,
        default=1_000_000,
        metavar="BYTES",
        help="largest request body accepted (default 1000000)",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="inject a fault into this fraction of replies, drawn from the seed (default 0)",
    )
    parser.add_argument(
        "--fault-types",
        default=",".join(FAULT_TYPES),
        metavar="LIST",
        help=f"comma-separated faults for --fault-rate (default all: {','.join(FAULT_TYPES)})",
    )
    parser.add_argument(
        "--journal-size", type=int, default=100, metavar="N", help="requests kept at GET /__mock/requests (default 100)"
    )
    parser.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="answer unmatched requests with a made-up reply (default: only with the bundled fixtures)",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="start even when --fixtures holds no fixture file (conversations can be added with "
        "POST /__mock/fixtures); without it an empty folder is an error",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="reload the fixtures when a file in the folder is edited, added or removed; "
        "a broken edit is logged and the previous set keeps serving",
    )
    parser.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help="serve from N processes on one socket; the journal, scenarios and added "
        "conversations are shared through a temporary SQLite file (default 1: one "
        "process, state in memory)",
    )
    parser.add_argument(
        "--upstream", metavar="URL", help="with --record-missing: the live server that answers what no fixture matches"
    )
    parser.add_argument(
        "--record-missing",
        action="store_true",
        help="forward requests no fixture matches to --upstream, and record them into --fixtures",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help=f"with --upstream: a header added to each forwarded request, e.g. the API key "
        f"(default: Authorization from ${API_KEY_VARIABLE})",
    )
    add_profile_arguments(parser)
    _add_allowed_host(parser)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def _add_allowed_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        type=_allowed_host,
        metavar="NAME",
        help="a Host name to serve besides IP addresses and localhost, e.g. a container's name; "
        ".NAME allows every name under it, * any (requests naming other hosts get 403: DNS rebinding)",
    )


def _allowed_host(text: str) -> str:
    from .local_guard import check_allowed_host

    try:
        return check_allowed_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--allowed-host ")) from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["record"]:
        return record_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        fault_types = parse_fault_types(args.fault_types)
    except ValueError as exc:
        parser.error(f"--fault-types: {exc}")
    problem = _argument_problem(args) or _record_missing_problem(args)
    if problem:
        parser.error(problem)
    try:
        settings = _settings(args, fault_types)
    except (PacingError, SettingsError) as exc:  # each names its field, which is the flag's name
        parser.error(f"--{exc.field.replace('_', '-')} {exc.reason}")
    try:
        profile = profile_from_args(args)
    except ProfileError as exc:
        parser.error(str(exc))
    upstream = _upstream(parser, args) if args.record_missing else None
    if args.fixtures is not None and not args.fixtures.is_dir():
        return _fail(
            f"--fixtures: {args.fixtures} is not a folder"
            if args.fixtures.exists()
            else f"--fixtures: {args.fixtures} does not exist"
        )
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")

    from contract.core.spec import SpecError

    from .app import create_app, settle_heap  # after the arguments are known good: it loads the contract
    from .fixtures import FixtureError

    on_unmatched = None
    if upstream is not None:
        from .recording.recorder import record_missing  # only a recording server needs it

        on_unmatched = record_missing(upstream, args.fixtures)
    try:  # with --workers too: the fixtures are checked here, once, so a bad one is one line and exit 2
        app = create_app(args.fixtures, settings, profile=profile, on_unmatched=on_unmatched)
    except (FixtureError, SpecError) as exc:
        return _fail(str(exc))
    except OSError as exc:  # the recorder could not prepare the folder it writes into
        if upstream is None:
            raise
        return _fail(f"--fixtures: cannot write to {args.fixtures}: {exc.strerror or exc}")
    # An empty folder is most often a wrong path or a missing checkout step; a server that answers
    # nothing would surface it only as "no fixture matches" in every test. Recording fills the folder.
    if (
        app.state.mock.fixture_count == 0
        and args.fixtures is not None
        and not (args.allow_empty or args.record_missing)
    ):
        return _fail(
            f"--fixtures: {args.fixtures} holds no fixture file (.yaml, .yml or .json); "
            "add one, or pass --allow-empty to start with none"
        )
    sock = _listen(args)
    if isinstance(sock, str):
        return _fail(sock)
    settle_heap()
    return _serve(app, sock, args, settings, profile, upstream)


def _settings(args: argparse.Namespace, fault_types: tuple[str, ...]) -> Settings:
    """The flags as one ``Settings``, which checks each value (PacingError or SettingsError names the flag)."""
    return Settings(
        seed=args.seed,
        pacing=Pacing(ttft_ms=args.ttft_ms, tokens_per_second=args.tokens_per_second, jitter=args.jitter),
        no_delay=args.no_delay,
        max_body=args.max_body,
        fault_rate=args.fault_rate,
        fault_types=fault_types,
        fallback=args.fallback,
        journal_size=args.journal_size,
        allowed_hosts=tuple(args.allowed_host),
        watch=args.watch,
    )


def _base_url(sock: socket.socket) -> str:
    """The URL a client uses for the bound socket (an IPv6 host in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def _run_uvicorn(app: Any, sock: socket.socket, log_level: str, lifespan: Literal["auto", "on", "off"]) -> int:
    """Serve on the bound socket until Ctrl-C, with a deadline for every request head; exit code 0."""
    import uvicorn

    config = uvicorn.Config(
        app, **protocol_options(), log_level=log_level, lifespan=lifespan, timeout_graceful_shutdown=1
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


def _listen(args: argparse.Namespace) -> socket.socket | str:
    """The bound socket, or why it cannot be had (one line)."""
    try:
        return _bind(args.host, args.port)
    except OSError as exc:
        return f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"


def _argument_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535, got {args.port}"
    if args.workers > 1 and (args.watch or args.record_missing):
        # Both change the conversations from files inside one process, which the other workers never see.
        return (
            f"{'--watch' if args.watch else '--record-missing'} works in one process; it cannot be "
            f"combined with --workers {args.workers}"
        )
    return None


def _worker_count(text: str) -> int:
    """``--workers``: a whole number of processes, at least 1."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of processes, got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


def _bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so a port in use is one clear line rather than a server log."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name the protocol: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it every reply on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _serve(
    app: object,
    sock: socket.socket,
    args: argparse.Namespace,
    settings: Settings,
    profile: Profile,
    upstream: Upstream | None = None,
) -> int:
    state = app.state.mock  # type: ignore[attr-defined]
    where = str(args.fixtures) if args.fixtures is not None else "bundled fixtures"
    print(
        f"mockserver: {_base_url(sock)}  {state.fixture_count} fixtures from {where}  "
        f"seed {args.seed}  profile {profile.label}"
        + ("  no delay" if args.no_delay else "")
        + (f"  fault rate {args.fault_rate:g}" if args.fault_rate else "")
        + (f"  recording what is missing from {upstream.display}" if upstream is not None else "")
        + ("  watching for changes" if args.watch else "")
        + (f"  {args.workers} workers" if args.workers > 1 else ""),
        flush=True,
    )
    if args.workers > 1:
        from .workers import serve_workers

        return serve_workers(args.fixtures, settings, args.workers, sock, args.log_level, profile)
    return _run_uvicorn(app, sock, args.log_level, lifespan="off")


# -- mockserver record, and --record-missing --------------------------------------------------------


def build_record_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mockserver record",
        description="A recording proxy: forward each request to a live server, stream its answer "
        "back, and write the exchange as a fixture that mockserver replays.",
    )
    parser.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="the live server's API base: http://HOST:PORT (taken as .../v1) or https://HOST/v1",
    )
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=Path("fixtures"),
        metavar="DIR",
        help="folder the conversations are written into, created if missing (default ./fixtures)",
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help=f"a header added to each forwarded request, e.g. 'Authorization: Bearer $KEY' "
        f"(default: Authorization from ${API_KEY_VARIABLE}); never written to disk",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free one (default 8000)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add_profile_arguments(parser)
    _add_allowed_host(parser)
    return parser


def record_main(argv: Sequence[str]) -> int:
    """``mockserver record``: the same one-line errors and exit code 2 as the serve command."""
    parser = build_record_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    upstream = _upstream(parser, args)
    try:
        profile = profile_from_args(args)
    except ProfileError as exc:
        parser.error(str(exc))
    problem = _unwritable(args.fixtures)
    if problem:
        return _fail(problem)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")

    from contract.core.spec import SpecError

    from .recording.recorder import (
        create_recorder_app,  # after the arguments are known good: importing loads the contract
    )

    try:
        app = create_recorder_app(upstream, args.fixtures, profile=profile, allowed_hosts=args.allowed_host)
    except SpecError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"--fixtures: cannot write to {args.fixtures}: {exc.strerror or exc}")
    sock = _listen(args)
    if isinstance(sock, str):
        return _fail(sock)
    store = app.state.recorder.store
    print(
        f"mockserver record: {_base_url(sock)}  forwarding to {upstream.display}  "
        f"writing into {args.fixtures} ({store.count} recorded conversations there)  profile {profile.label}",
        flush=True,
    )
    return _run_uvicorn(app, sock, args.log_level, lifespan="on")


def _record_missing_problem(args: argparse.Namespace) -> str | None:
    if args.record_missing and not args.upstream:
        return "--record-missing needs --upstream URL, the server that answers what no fixture matches"
    if (args.upstream or args.header) and not args.record_missing:
        return f"{'--upstream' if args.upstream else '--header'} is used only with --record-missing"
    if args.record_missing and args.fixtures is None:
        return "--record-missing needs --fixtures DIR, the folder the recorded conversations are written into"
    if args.record_missing and args.fallback:
        return "--record-missing and --fallback both answer unmatched requests; choose one"
    if args.record_missing and args.fixtures.is_dir():
        return _unwritable(args.fixtures)
    return None


def _upstream(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Upstream:
    try:
        return Upstream.parse(args.upstream, upstream_headers(args.header, os.environ))
    except ValueError as exc:
        parser.error(str(exc))
        raise SystemExit(EXIT_USAGE) from None  # error() has exited already


def _unwritable(folder: Path) -> str | None:
    """Why recorded files cannot be written into ``folder`` (created if missing), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".mockserver-write-check"):
            pass
    except OSError as exc:
        return f"--fixtures: cannot write to {folder}: {exc.strerror or exc}"
    return None


def _fail(message: str) -> int:
    print(f"mockserver: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
