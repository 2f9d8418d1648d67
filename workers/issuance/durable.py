"""Writes that outlast a database outage: what a group did after its invitations went out.

An invitation the server accepted cannot be taken back. If the write that records it fails
because the database cannot be reached, the job must not go back to the queue: its
redelivery would find the record without its ``*_sent_at`` stamp and send the invitation
again. So such a write is run again, with growing pauses, until the database takes it, and
the group's messages stay unacked meanwhile (the broker hands them to no one else); they are
settled only after it. Every job that could send the same invitation needs the database
first (its issue transaction), so while the database is down nothing is sent twice, and once
it is back the held write lands within one pause.

Only unavailability (``credbatch.db.failures``: a refused or lost connection, a server
shutting down or starting up, too many connections, a connection attempt timing out) and
conflicts (the server rolled the transaction back) are waited out. Any other error is a bug
or bad data and propagates at once, as before.

The wait ends when the write succeeds or the task is cancelled: the consumer cancels its
groups when the grace period of a stop runs out, and their unacked messages go back to the
queue; a redelivery then sends again what was sent and not yet recorded.

A unit must be whole and idempotent: one transaction (or several, each safe to run twice),
because a connection lost during COMMIT leaves it unknown whether the transaction took effect.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from credbatch.db.failures import DbFailure, classify
from credbatch.errors import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

_WAITED_OUT = (DbFailure.UNAVAILABLE, DbFailure.CONFLICT)


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not take the write now (try it again)."""
    if isinstance(error, Unavailable | TimeoutError):
        # Unavailable: credbatch.tenancy's answer to a connection refused or lost between
        # statements; TimeoutError: asyncpg's connection attempt outlived its timeout.
        return True
    return classify(error) in _WAITED_OUT


@dataclass(frozen=True)
class Backoff:
    """Pauses between runs of a held write: doubling from ``first`` up to ``longest``.

    ``longest`` bounds how long after the database's return a held write lands; it is short
    because every job whose record the write concerns waits for it (see the module doc).
    """

    first: float = 0.05
    longest: float = 1.0

    def pause(self, failed_runs: int) -> float:
        """The pause after ``failed_runs`` failed runs; jittered so workers do not reconnect in
        lock-step."""
        cap = min(self.longest, self.first * 2 ** (failed_runs - 1))
        return random.uniform(cap / 2, cap)


async def hold_until_written(
    unit: Callable[[], Awaitable[T]], what: str, *, backoff: Backoff = Backoff()
) -> T:
    """Run ``unit`` until the database takes it; see the module doc.

    Args:
        unit: the whole write (its transactions included), safe to run more than once.
        what: what the write records, for the log ("outcomes of 25 records"); no data.
        backoff: the pauses between runs.

    Raises:
        Any error of ``unit`` that is not the database being unavailable, at once.
    """
    loop = asyncio.get_running_loop()
    failed_runs = 0
    started = loop.time()
    while True:
        try:
            result = await unit()
        except Exception as error:
            if not database_unavailable(error):
                raise
            failed_runs += 1
            if failed_runs == 1:
                log.warning(
                    "database unavailable (%s): holding the %s until it takes them",
                    type(error).__name__,
                    what,
                )
            await asyncio.sleep(backoff.pause(failed_runs))
            continue
        if failed_runs:
            log.info(
                "the %s were written after %.1f s and %d failed runs",
                what,
                loop.time() - started,
                failed_runs,
            )
        return result
