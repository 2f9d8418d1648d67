"""The janitor's rest after a step: the pause at least, and long enough that its work takes no
more than its share of the time, so a slow step (a busy database) is followed by a long rest."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from workers.janitor.janitor import PassResult, prune, rest_after


@pytest.mark.parametrize(
    ("worked", "pause", "share", "rest"),
    [
        (0.01, 0.1, 0.3, 0.1),  # a quick step: the pause
        (0.3, 0.1, 0.3, 0.7),  # a slow one: 0.3 s of every second at most
        (1.0, 0.0, 0.5, 1.0),
        (1.0, 0.0, 1.0, 0.0),  # a share of 1 and no pause: flat out
        (0.0, 0.0, 0.3, 0.0),
    ],
)
def test_the_rest_keeps_the_work_to_its_share(
    worked: float, pause: float, share: float, rest: float
) -> None:
    assert rest_after(worked, pause, share) == pytest.approx(rest)


async def test_steps_are_spaced_by_their_own_duration() -> None:
    starts: list[float] = []

    async def slow_step() -> int:
        starts.append(time.monotonic())
        await asyncio.sleep(0.1)
        return 10 if len(starts) < 3 else 0

    result = PassResult()
    await prune("test", slow_step, 10, asyncio.Event(), result, pause=0.0, share=0.25)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Each 0.1 s step is followed by a rest of three times as long.
    assert len(gaps) == 2 and all(0.39 <= gap < 0.6 for gap in gaps), gaps
    assert result.pruned == {"test": 20}
