"""A turn that answers the same request differently each time: its reply steps, and which one plays.

Clients are tested on sequences ("429, then the reply"; "the stream drops, the
retry completes"), so one fixture turn may hold several replies. The step for a
request depends only on how many requests the turn answered before it, a count
the state store keeps and resets; this module is the pure rule from that count
to a reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from .turns import AssistantTurn

REPEAT_LAST = "repeat-last"
CYCLE = "cycle"
THEN_POLICIES = (REPEAT_LAST, CYCLE)


@dataclass(frozen=True)
class Step:
    """One reply of a scenario, played to ``times`` consecutive requests."""

    turn: AssistantTurn
    times: int = 1


@dataclass(frozen=True)
class Scenario:
    """The replies of one turn, in order; after the last, ``then`` says what plays next."""

    steps: tuple[Step, ...]
    then: str = REPEAT_LAST

    def __post_init__(self) -> None:
        if not self.steps or any(step.times < 1 for step in self.steps):
            raise ValueError("a scenario needs at least one step, each played at least once")
        if self.then not in THEN_POLICIES:
            raise ValueError(f"then must be one of {', '.join(THEN_POLICIES)}, got {self.then!r}")

    @property
    def length(self) -> int:
        """Requests it takes to play every step once."""
        return sum(step.times for step in self.steps)

    def step_at(self, play: int) -> AssistantTurn:
        """The reply to the request that this turn answers after ``play`` earlier ones (0-based)."""
        if play < 0:
            raise ValueError(f"play must be 0 or more, got {play}")
        if play >= self.length:
            if self.then == REPEAT_LAST:
                return self.steps[-1].turn
            play %= self.length
        for step in self.steps:
            if play < step.times:
                return step.turn
            play -= step.times
        raise AssertionError("unreachable: play is below the scenario's length")

    @property
    def turns(self) -> tuple[AssistantTurn, ...]:
        return tuple(step.turn for step in self.steps)
