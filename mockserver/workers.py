"""``mockserver --workers N``: N processes serve one socket and share their state through one SQLite file.

This is uvicorn's own worker model: the supervisor (the ``mockserver``
process) binds the socket once, and uvicorn's ``Multiprocess`` spawns the
workers that accept from it, replaces one that dies and stops them all on
Ctrl-C. A spawned worker builds its app from an import string, so the server's
options reach it as JSON in an environment variable; the supervisor also
creates the shared state file (``shared_store``) before the first worker starts
and deletes it after the last has stopped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from contract.core.profiles import Profile

from .app import create_app, settle_heap
from .serve import protocol_options
from .settings import Settings
from .shared_store import StateFileError, create_state_file
from .uvicorn_compat import STARTUP_FAILURE, Multiprocess

SETTINGS_VARIABLE = (
    "MOCKSERVER_WORKER_SETTINGS"  # JSON: the fixtures folder, the Settings, the state file, the log level, the profile
)


def serve_workers(
    fixtures_dir: Path | None,
    settings: Settings,
    workers: int,
    sock: socket.socket,
    log_level: str,
    profile: Profile | None = None,
) -> int:
    """Serve ``create_app(fixtures_dir, settings)`` from ``workers`` processes on ``sock`` until Ctrl-C; exit 0.

    A worker that cannot start (the state file gone) stops them all, with exit code 2: respawning it
    would fail the same way every second while the server ran on fewer workers than asked for.
    """
    with tempfile.TemporaryDirectory(prefix="mockserver-state-") as folder:
        state_file = create_state_file(Path(folder) / "state.sqlite3")
        os.environ[SETTINGS_VARIABLE] = json.dumps(
            {
                "fixtures_dir": str(fixtures_dir.resolve()) if fixtures_dir is not None else None,
                "settings": settings.as_json(),
                "state_file": str(state_file),
                "log_level": log_level,
                "profile": (profile or Profile()).name,
                "overlays": [str(path.resolve()) for path in (profile or Profile()).overlays],
            }
        )
        config = uvicorn.Config(
            f"{__name__}:app_from_environment",
            factory=True,
            workers=workers,
            **protocol_options(),
            log_level=log_level,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
    return 2 if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes) else 0


def app_from_environment() -> Starlette:
    """The app of one worker process, from what the supervisor left in the environment."""
    given = json.loads(os.environ[SETTINGS_VARIABLE])
    logging.basicConfig(level=given["log_level"].upper(), format="%(levelname)s: %(name)s: %(message)s")
    settings = Settings(**given["settings"])
    profile = Profile(given["profile"], tuple(Path(path) for path in given["overlays"]))
    try:
        app = create_app(given["fixtures_dir"], settings, profile=profile, state_file=given["state_file"])
    except StateFileError as exc:  # one line; the supervisor sees the exit code and stops every worker
        print(f"mockserver: worker {os.getpid()} cannot start: {exc}; stopping the server", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    settle_heap()
    return app
