"""The work-queue consumer: receives jobs, hands them to the handler in small groups.

Messages are decoded and buffered as they arrive (at most ``worker_prefetch`` unacked; a
message carries one job or several) and their jobs taken in groups of about ``group_size`` —
waiting at most ``linger`` seconds to fill one, never splitting a message's jobs — so each
group's database work is a few statements instead of a few per record. Several groups run at
once. On stop, the consumer is cancelled first (no new deliveries), then every message
already received is processed and settled within the grace period; whatever is left unacked
when the channel closes goes back to the queue. A group whose invitations went out while the
database is down holds its messages until its outcomes are written (``durable``), so during
an outage the grace period is what such a group gets: past it the group is cancelled, and
the redelivery sends again what it had sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from credbatch.config import Settings
from credbatch.messaging import declare_topology
from credbatch.metrics import JOBS_IN_FLIGHT, WORKER_BUFFERED, WORKER_SLOTS, WORKER_SLOTS_BUSY
from workers.issuance.handler import IssuanceHandler
from workers.issuance.job import Job, parse

log = logging.getLogger(__name__)


class IssuanceConsumer:
    """Consumes ``credbatch.issuance.jobs`` on its own channel."""

    def __init__(
        self,
        settings: Settings,
        handler: IssuanceHandler,
        *,
        group_size: int | None = None,
        linger: float = 0.005,
    ) -> None:
        self._settings = settings
        self._handler = handler
        self._group_size = group_size or max(1, min(50, settings.worker_prefetch // 4))
        self._linger = linger
        # Each entry: the jobs of one message.
        self._buffer: asyncio.Queue[list[Job]] = asyncio.Queue()
        groups = max(1, settings.worker_prefetch // self._group_size)
        self._slots = asyncio.Semaphore(groups)
        WORKER_SLOTS.set(groups)
        self._inflight: set[asyncio.Task[None]] = set()
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    async def start(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        self._channel = channel
        await channel.set_qos(prefetch_count=self._settings.worker_prefetch)
        topology = await declare_topology(channel, self._settings)
        self._queue = topology.work_queue
        self._dispatcher = asyncio.create_task(self._dispatch())
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._handler.deliveries.received(message)
        jobs = parse(message)
        self._buffer.put_nowait(jobs)
        WORKER_BUFFERED.add(len(jobs))

    async def _take_group(self) -> list[Job]:
        group = list(await self._buffer.get())
        deadline = asyncio.get_running_loop().time() + self._linger
        while len(group) < self._group_size:
            if not self._buffer.empty():
                group += self._buffer.get_nowait()
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                group += await asyncio.wait_for(self._buffer.get(), remaining)
            except TimeoutError:
                break
        return group

    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                group = await self._take_group()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._run(group))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _run(self, group: list[Job]) -> None:
        WORKER_BUFFERED.add(-len(group))
        JOBS_IN_FLIGHT.add(len(group))
        WORKER_SLOTS_BUSY.add(1)
        try:
            await self._handler.handle_jobs(group)
        except Exception as error:  # handle() settles messages itself; this is a last guard
            log.error("issuance group crashed: %s", type(error).__name__)
        finally:
            JOBS_IN_FLIGHT.add(-len(group))
            WORKER_SLOTS_BUSY.add(-1)
            self._slots.release()

    @property
    def idle(self) -> bool:
        return self._buffer.empty() and not self._inflight

    async def stop(self, grace: float) -> None:
        """Stop consuming, finish what was received within ``grace`` seconds, close."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # Polling keeps the hot path free of bookkeeping; stopping is rare.
        while not self.idle and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._inflight:
            log.warning(
                "%d groups still running at the end of the grace period", len(self._inflight)
            )
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
