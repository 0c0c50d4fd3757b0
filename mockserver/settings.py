"""How a mock serves: one value for everything the command line's flags set, checked when it is made.

The command line, the pytest fixtures, the worker processes (which rebuild it from JSON) and a user's
own ``create_app`` call all make a ``Settings``; it refuses a value out of range itself, as ``Pacing``
does, so no way of making one can start a server that would misbehave later.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.core.schemas import is_finite_number, is_number

from .faults import FAULT_TYPES, fault_types_problem
from .local_guard import check_allowed_host
from .turns import Pacing

DEFAULT_WATCH_INTERVAL = 0.5  # seconds between polls of the fixtures folder


class SettingsError(ValueError):
    """A setting out of range; ``field`` names it, so each caller can say where it was given."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Settings:
    """How a mock serves: everything the command line's flags set, in one value the app and its routes share.

    ``fallback=None`` answers unmatched requests with a made-up reply only when serving the bundled
    fixtures, so a new user sees a stream at once while a project's own fixtures stay strict. ``watch``
    reloads the folder when a file in it changes, polling every ``watch_interval`` seconds. Lists are
    taken where tuples are kept, and a mapping where a ``Pacing`` is, so the JSON of ``as_json()`` makes
    the same value again.
    """

    seed: int = 0
    pacing: Pacing = field(default_factory=Pacing)
    no_delay: bool = False
    max_body: int = 1_000_000
    fault_rate: float = 0.0
    fault_types: tuple[str, ...] = FAULT_TYPES
    fallback: bool | None = None
    journal_size: int = 100
    allowed_hosts: tuple[str, ...] = ()  # Host names served besides addresses and localhost (local_guard)
    watch: bool = False
    watch_interval: float = DEFAULT_WATCH_INTERVAL

    def __post_init__(self) -> None:
        if isinstance(self.pacing, Mapping):
            object.__setattr__(self, "pacing", Pacing(**self.pacing))
        object.__setattr__(self, "fault_types", _names("fault_types", self.fault_types))
        object.__setattr__(self, "allowed_hosts", _names("allowed_hosts", self.allowed_hosts))
        problem = _problem(self)
        if problem is not None:
            raise SettingsError(*problem)

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON values, for a worker process to make the same ``Settings`` from."""
        return dataclasses.asdict(self)


def _names(name: str, value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SettingsError(name, f"must be a list of names, got {value!r}")
    return tuple(value)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _problem(settings: Settings) -> tuple[str, str] | None:
    """The first field out of range and why, or None."""
    if not _is_whole(settings.seed):
        return "seed", f"must be a whole number, got {settings.seed!r}"
    if not isinstance(settings.pacing, Pacing):
        return "pacing", f"must be a Pacing or a mapping of its fields, got {settings.pacing!r}"
    for flag in ("no_delay", "watch"):
        if not isinstance(getattr(settings, flag), bool):
            return flag, f"must be true or false, got {getattr(settings, flag)!r}"
    if settings.fallback is not None and not isinstance(settings.fallback, bool):
        return "fallback", f"must be true, false or None, got {settings.fallback!r}"
    if not _is_whole(settings.max_body) or settings.max_body < 1:
        return "max_body", f"must be at least 1, got {_shown(settings.max_body)}"
    if not _is_whole(settings.journal_size) or settings.journal_size < 1:
        return "journal_size", f"must be at least 1, got {_shown(settings.journal_size)}"
    if not is_number(settings.fault_rate) or not 0 <= settings.fault_rate <= 1:
        return "fault_rate", f"must be between 0 and 1, got {_shown(settings.fault_rate)}"
    unknown = fault_types_problem(settings.fault_types)
    if unknown is not None:
        return "fault_types", unknown
    for host in settings.allowed_hosts:
        try:
            check_allowed_host(host)
        except ValueError as exc:
            return "allowed_hosts", str(exc).removeprefix("--allowed-host ")
    interval = settings.watch_interval
    if not is_finite_number(interval) or interval <= 0:
        return "watch_interval", f"must be a number of seconds above 0, got {_shown(interval)}"
    return None


def _shown(value: Any) -> str:
    """A number as the command line words it (``5``, ``0.5``), anything else as Python writes it."""
    return f"{value:g}" if is_number(value) and not _is_whole(value) else repr(value)
