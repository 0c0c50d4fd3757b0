"""Profiles: the contract as a dialect, the seed document plus overlays.

``seed`` is the contract as it stands (``openapi.yaml``). ``openai`` adds the conventions that
OpenAI-compatible clients and servers follow (``stream`` defaults to false, ``json_object``, the
``developer`` role...), as an Overlay 1.0 document shipped beside this module. A user's own dialect is
``--overlay FILE`` on top of either. Every tool takes the same two options and prints the label, so a
verdict always says which dialect it was judged by.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent / "dialects"
DEFAULT_PROFILE = "seed"
# name -> overlay files applied to the document, in order
BUNDLED: dict[str, tuple[str, ...]] = {"seed": (), "openai": ("openai.yaml",)}


class ProfileError(Exception):
    """An unknown profile or an overlay that cannot be read or applied; one line."""


@dataclass(frozen=True)
class Profile:
    """Which dialect: a bundled profile's name and the user's own overlay files on top of it."""

    name: str = DEFAULT_PROFILE
    overlays: tuple[Path, ...] = ()

    @property
    def label(self) -> str:
        """``openai``, or ``seed + my-server.yaml``: what start-up lines and reports print."""
        return " + ".join([self.name, *(path.name for path in self.overlays)])

    def overlay_paths(self) -> list[Path]:
        return [PROFILE_DIR / name for name in BUNDLED[self.name]] + list(self.overlays)

    def options(self) -> list[str]:
        """The command-line options that select this profile, for rerun lines; none for the default."""
        out = [] if self.name == DEFAULT_PROFILE else ["--profile", self.name]
        for path in self.overlays:
            out += ["--overlay", str(path)]
        return out


def profile(name: str | None = None, overlays: Sequence[str | Path] = ()) -> Profile:
    """The profile a user asked for; ProfileError naming the bundled ones when ``name`` is not one."""
    chosen = name or DEFAULT_PROFILE
    if chosen not in BUNDLED:
        raise ProfileError(f"unknown profile {chosen!r}; the bundled profiles are {', '.join(sorted(BUNDLED))}")
    return Profile(chosen, tuple(Path(path) for path in overlays))


def as_profile(value: Profile | str | None) -> Profile:
    return value if isinstance(value, Profile) else profile(value)


def apply_profile(document: dict[str, Any], chosen: Profile, read: Callable[[Path], Any]) -> dict[str, Any]:
    """``document`` with the profile's overlays applied; ``read(path)`` parses one file (YAML or JSON)."""
    from .overlay import OverlayError, apply_overlay, parse_overlay  # the JSONPath engine, only when used

    try:
        for path in chosen.overlay_paths():
            document = apply_overlay(document, parse_overlay(read(path), str(path)))
    except OverlayError as exc:
        raise ProfileError(str(exc)) from None
    return document


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """``--profile NAME`` and ``--overlay FILE``: the same two options, worded alike, on every command."""
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        metavar="NAME",
        help=f"the contract's dialect: {' or '.join(sorted(BUNDLED))} (default {DEFAULT_PROFILE}; "
        "openai is what OpenAI-compatible clients and servers speak; see docs/profiles.md)",
    )
    parser.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="FILE",
        help="an OpenAPI Overlay 1.0 file applied on top of the profile (repeatable): a dialect of your own",
    )


def profile_from_args(args: argparse.Namespace) -> Profile:
    """The profile the options name; ProfileError (one line) for an unknown name or a missing overlay file."""
    chosen = profile(args.profile, args.overlay)
    for path in chosen.overlays:
        if not path.is_file():
            raise ProfileError(f"--overlay: {path} {'is not a file' if path.exists() else 'does not exist'}")
    return chosen
