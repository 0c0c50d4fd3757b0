"""Admission in turns: a burst is let in a few requests per turn of the loop, first come first served."""

from __future__ import annotations

import asyncio

import pytest

from mockserver.admission import Admission


class TurnCounter:
    """Counts the loop's turns: one callback per turn, re-armed each time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.turn, self.running = loop, 0, True
        loop.call_soon(self.tick)

    def tick(self) -> None:
        self.turn += 1
        if self.running:
            self.loop.call_soon(self.tick)


async def burst(admission: Admission, count: int, cancel: set[int] = frozenset()) -> list[tuple[int, int]]:
    """Start ``count`` requests at once; the (request, turn) of each admission, in the order admitted."""
    counter = TurnCounter(asyncio.get_running_loop())
    admitted: list[tuple[int, int]] = []

    async def request(number: int) -> None:
        await admission.enter()
        admitted.append((number, counter.turn))

    tasks = [asyncio.ensure_future(request(number)) for number in range(count)]
    await asyncio.sleep(0)  # every request has asked once
    for number in cancel:
        tasks[number].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    counter.running = False
    return admitted


def test_a_burst_is_let_in_a_few_per_turn_in_the_order_it_came() -> None:
    admitted = asyncio.run(burst(Admission(per_turn=4), 30))
    assert [number for number, _ in admitted] == list(range(30)), "first come, first served"
    per_turn: dict[int, int] = {}
    for _, turn in admitted:
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) <= 4, f"at most 4 per turn: {per_turn}"
    assert len(per_turn) >= 30 // 4, "the burst took several turns"


def test_a_request_with_room_in_its_turn_is_not_delayed() -> None:
    async def main() -> int:
        admission = Admission(per_turn=4)
        loop = asyncio.get_running_loop()
        before = loop.time()
        for _ in range(3):
            await admission.enter()
        return admission.waiting() + int(loop.time() - before > 0.5)

    assert asyncio.run(main()) == 0


def test_a_request_cancelled_while_waiting_takes_no_room() -> None:
    admitted = asyncio.run(burst(Admission(per_turn=2), 12, cancel={4, 5, 6}))
    numbers = [number for number, _ in admitted]
    assert numbers == [n for n in range(12) if n not in {4, 5, 6}]
    turns = sorted({turn for _, turn in admitted})
    assert len(turns) <= 5, f"nine requests, two per turn: no turn was spent on a cancelled one ({turns})"


def test_each_loop_has_its_own_queue() -> None:
    admission = Admission(per_turn=3)
    first = asyncio.run(burst(admission, 7))
    second = asyncio.run(burst(admission, 7))  # a new loop: nothing left over from the old one
    assert [n for n, _ in first] == [n for n, _ in second] == list(range(7))


def test_a_turn_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Admission(per_turn=0)
