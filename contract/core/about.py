"""What ``--version`` prints, for both commands: the package, and the libraries that shape a run.

A report is only reproducible with the versions that made it: Hypothesis and
hypothesis-jsonschema decide which requests a seed draws.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from typing import Any

DISTRIBUTION = "chatstream-testkit"
_SHAPING = ("hypothesis", "hypothesis-jsonschema", "jsonschema", "starlette", "uvicorn")
# Compiled libraries that only make things faster: (distribution, module, what happens without it).
_SPEED_UPS = (
    ("jsonschema-rs", "jsonschema_rs", "validation uses jsonschema alone"),
    ("orjson", "orjson", "JSON goes through the standard library"),
    ("httptools", "httptools", "the mock parses HTTP with h11"),
    ("uvloop", "uvloop", "the mock runs on asyncio's own event loop"),
)


def version_line(program: str) -> str:
    """``contract-check 0.1.0 (hypothesis 6.170.9, ...)``; a library that is missing is left out."""
    libraries = []
    for name in _SHAPING:
        try:
            libraries.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    missing = dict(missing_speed_ups())
    for name, _, _ in _SPEED_UPS:
        if name in missing:
            libraries.append(f"{name} missing: {missing[name]}, slower")
            continue
        try:
            libraries.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            libraries.append(f"{name} (version unknown)")
    return f"{program} {package_version()} ({', '.join(libraries)})"


def missing_speed_ups() -> list[tuple[str, str]]:
    """The compiled libraries that cannot be imported here, each with what is used instead."""
    missing = []
    for name, module, without in _SPEED_UPS:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append((name, without))
    return missing


def package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class VersionAction(argparse.Action):
    """``--version``: the version line as one line (argparse's own action wraps it to the terminal width)."""

    def __init__(
        self,
        option_strings: list[str],
        program: str,
        dest: str = argparse.SUPPRESS,
        default: str = argparse.SUPPRESS,
        help: str = "print the version and exit",
    ) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)
        self.program = program

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(version_line(self.program) + "\n")
        parser.exit(0)
