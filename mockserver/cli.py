"""``mockserver``: serve fixture conversations on a loopback port.

Every user mistake (a missing folder, a broken fixture, a bad flag, a port in
use) ends with one line on stderr and exit code 2, never a traceback, so a CI
log shows the cause in its last line.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path
from typing import Sequence

from contract.about import VersionAction

from .faults import FAULT_TYPES, parse_fault_types
from .turns import Pacing

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"mockserver: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mockserver", description="Replay fixture conversations as an OpenAI-compatible "
                                                    "streaming chat-completion server.")
    parser.add_argument("--version", action=VersionAction, program="mockserver")
    parser.add_argument("--fixtures", type=Path, metavar="DIR",
                        help="folder of fixture conversations (YAML or JSON, sub-folders too); "
                             "default: the bundled conversations, with a fallback for any other request")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind, 0 for any free one (default 8000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice: ids, jitter, faults")
    parser.add_argument("--ttft-ms", type=float, metavar="MS", help="time to first token (default 250)")
    parser.add_argument("--tokens-per-second", type=float, metavar="N", help="token rate (default 40)")
    parser.add_argument("--jitter", type=float, metavar="X", help="relative spread of each delay (default 0.2)")
    parser.add_argument("--no-delay", action="store_true", help="send every chunk at once (fast tests)")
    parser.add_argument("--max-body", type=int, default=1_000_000, metavar="BYTES",
                        help="largest request body accepted (default 1000000)")
    parser.add_argument("--fault-rate", type=float, default=0.0, metavar="P",
                        help="inject a fault into this fraction of replies, drawn from the seed (default 0)")
    parser.add_argument("--fault-types", default=",".join(FAULT_TYPES), metavar="LIST",
                        help=f"comma-separated faults for --fault-rate (default all: {','.join(FAULT_TYPES)})")
    parser.add_argument("--journal-size", type=int, default=100, metavar="N",
                        help="requests kept at GET /__mock/requests (default 100)")
    parser.add_argument("--fallback", action=argparse.BooleanOptionalAction, default=None,
                        help="answer unmatched requests with a made-up reply (default: only with the bundled fixtures)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        fault_types = parse_fault_types(args.fault_types)
    except ValueError as exc:
        parser.error(f"--fault-types: {exc}")
    problem = _argument_problem(args)
    if problem:
        parser.error(problem)
    if args.fixtures is not None and not args.fixtures.is_dir():
        return _fail(f"--fixtures: {args.fixtures} is not a folder" if args.fixtures.exists()
                     else f"--fixtures: {args.fixtures} does not exist")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")

    from .app import create_app  # after the arguments are known good: importing loads the contract
    from .fixtures import FixtureError
    from contract.spec import SpecError

    pacing = Pacing(ttft_ms=args.ttft_ms, tokens_per_second=args.tokens_per_second, jitter=args.jitter)
    try:
        app = create_app(args.fixtures, seed=args.seed, pacing=pacing, no_delay=args.no_delay,
                         max_body=args.max_body, fault_rate=args.fault_rate, fault_types=fault_types,
                         journal_size=args.journal_size, fallback=args.fallback)
    except (FixtureError, SpecError) as exc:
        return _fail(str(exc))
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    return _serve(app, sock, args)


def _argument_problem(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535, got {args.port}"
    if args.ttft_ms is not None and args.ttft_ms < 0:
        return f"--ttft-ms must be 0 or more, got {args.ttft_ms:g}"
    if args.tokens_per_second is not None and args.tokens_per_second <= 0:
        return f"--tokens-per-second must be above 0, got {args.tokens_per_second:g}"
    if args.jitter is not None and not 0 <= args.jitter < 1:
        return f"--jitter must be at least 0 and below 1, got {args.jitter:g}"
    if args.max_body < 1:
        return f"--max-body must be at least 1, got {args.max_body}"
    if not 0 <= args.fault_rate <= 1:
        return f"--fault-rate must be between 0 and 1, got {args.fault_rate:g}"
    if args.journal_size < 1:
        return f"--journal-size must be at least 1, got {args.journal_size}"
    return None


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


def _serve(app: object, sock: socket.socket, args: argparse.Namespace) -> int:
    import uvicorn

    host, port = sock.getsockname()[:2]
    state = app.state.mock  # type: ignore[attr-defined]
    where = str(args.fixtures) if args.fixtures is not None else "bundled fixtures"
    url_host = f"[{host}]" if ":" in host else host
    print(f"mockserver: http://{url_host}:{port}/v1  {state.fixture_count} fixtures from {where}  "
          f"seed {args.seed}" + ("  no delay" if args.no_delay else "")
          + (f"  fault rate {args.fault_rate:g}" if args.fault_rate else ""), flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


def _fail(message: str) -> int:
    print(f"mockserver: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
