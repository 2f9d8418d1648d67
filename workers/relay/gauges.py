"""The backlog gauges: outbox size and age, dead-letter depth, read every few seconds.

Read here rather than on each scrape: the scrape thread cannot run async I/O, and a fixed
interval keeps the cost on PostgreSQL and RabbitMQ the same however often Prometheus (or
several of them) scrapes. ``outbox_backlog()`` (``credbatch/db/functions``) reads the
fair-dispatch keys, one row per batch with PENDING records, not the backlog itself; a passive
declaration of the dead-letter queue returns its message count without touching the messages.
A read that fails clears its gauges, so a dashboard shows a gap rather than a stale number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aio_pika.abc import AbstractChannel

from credbatch.messaging.topology import DEAD_QUEUE
from credbatch.metrics import DEAD_LETTER_DEPTH, OUTBOX_OLDEST_AGE, OUTBOX_PENDING

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
TIMEOUT_SECONDS = 2.0

_BACKLOG = """
SELECT pending, extract(epoch FROM now() - coalesce(oldest, now()))::float8 AS age
FROM outbox_backlog()
"""


class BacklogGauges:
    """Keeps OUTBOX_PENDING, OUTBOX_OLDEST_AGE and DEAD_LETTER_DEPTH current."""

    def __init__(
        self, pool: asyncpg.Pool, channel: AbstractChannel, interval: float = INTERVAL_SECONDS
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._interval = interval

    async def _outbox(self) -> None:
        try:
            row = await self._pool.fetchrow(_BACKLOG, timeout=TIMEOUT_SECONDS)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
            log.debug("outbox backlog not read: %s", type(error).__name__)
            OUTBOX_PENDING.clear()
            OUTBOX_OLDEST_AGE.clear()
            return
        assert row is not None
        OUTBOX_PENDING.set(row["pending"])
        OUTBOX_OLDEST_AGE.set(max(0.0, row["age"]))

    async def _dead_letters(self) -> None:
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                # The protocol channel: a robust channel answers a passive declaration of a
                # queue it knows from its cache, with the count of the first declaration.
                underlay = await self._channel.get_underlay_channel()
                declared = await underlay.queue_declare(DEAD_QUEUE, passive=True)
        except Exception as error:
            # A closed channel, a lost connection (the robust connection reopens it), a timeout.
            log.debug("dead-letter depth not read: %s", type(error).__name__)
            DEAD_LETTER_DEPTH.clear()
            return
        DEAD_LETTER_DEPTH.set(declared.message_count or 0)

    async def sample_once(self) -> None:
        await asyncio.gather(self._outbox(), self._dead_letters())

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set."""
        while not stop.is_set():
            await self.sample_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
