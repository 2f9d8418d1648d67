"""Following a batch: one shared poll per batch and process, fanned out to its watchers.

Each watcher's first read runs with the caller's own scope (row-level security decides
whether the caller may see the batch: NOT_FOUND otherwise); it is the watch's first message.
After that the watcher subscribes to the batch's shared poll, which reads the batch once per
``interval`` for every watcher of that batch in this process together. What a read returns
does not depend on who asks (visibility is all or nothing per batch, and a batch's creator and
department never change), so sharing it discloses nothing a watcher could not read itself.

Polls are short read-only transactions that hold no lock, so watchers cost the workers
nothing. A watcher only takes the latest state whenever it is ready for it: a slow client
skips intermediate states instead of holding up the poll or the other watchers.

Limits: concurrent watches per caller and per process (RESOURCE_EXHAUSTED past them), and a
maximum lifetime after which a watch ends cleanly (OK) with the last state it sent. A client
learns which of the two clean ends it met from ``end_reason``.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from contextlib import aclosing
from dataclasses import dataclass

from credbatch.batches.model import BatchView
from credbatch.errors import ResourceExhausted

Read = Callable[[], Awaitable[BatchView]]

WATCH_RETRY_SECONDS = 5.0
"""The RetryInfo of a refused watch: other watches end (or re-watch) within seconds."""


@dataclass(frozen=True)
class WatchLimits:
    """How many watches run at once, for how long, and how often a batch is read."""

    per_caller: int = 10
    total: int = 1000
    max_seconds: float = 3600.0
    interval: float = 1.0


class WatchEnd(enum.StrEnum):
    """Why a watch ended without an error, spelled as the protos' WatchEndReason."""

    BATCH_ENDED = "WATCH_END_REASON_BATCH_ENDED"
    STREAM_LIFETIME = "WATCH_END_REASON_STREAM_LIFETIME"


def end_reason(last: BatchView) -> WatchEnd:
    """Why a watch that ended cleanly after sending ``last`` ended.

    A watch ends cleanly only after sending a terminal state or at its maximum lifetime, and a
    terminal state is always sent (it differs from any running state in ``progress_key``), so
    the last state sent tells the two apart.
    """
    return WatchEnd.BATCH_ENDED if last.terminal else WatchEnd.STREAM_LIFETIME


class _SharedPoll:
    """The poll of one batch: reads it every ``interval`` while anyone watches."""

    def __init__(self, read: Read, interval: float) -> None:
        self._read = read
        self._interval = interval
        self.view: BatchView | None = None
        # Loop time at which the read that produced ``view`` started.
        self.read_started = -math.inf
        self.error: Exception | None = None
        self.changed = asyncio.Event()
        self.watchers = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                view = await self._read()
                self.view, self.read_started = view, started
                self._wake()
                if view.terminal:
                    return
                await asyncio.sleep(self._interval)
        except Exception as error:  # handed to every watcher, which raises it
            self.error = error
            self._wake()

    def _wake(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()


class WatchHub:
    """The shared polls and the watch limits of one process."""

    def __init__(self, limits: WatchLimits) -> None:
        self._limits = limits
        self._polls: dict[Hashable, _SharedPoll] = {}
        self._per_caller: Counter[Hashable] = Counter()
        self._total = 0

    @property
    def active(self) -> int:
        """Watches running now."""
        return self._total

    def _admit(self, caller: Hashable) -> None:
        if self._total >= self._limits.total:
            raise ResourceExhausted(
                "too many watches on this server; try again later",
                reason="WATCH_LIMIT",
                metadata={"limit": str(self._limits.total)},
                retry_delay=WATCH_RETRY_SECONDS,
            )
        if self._per_caller[caller] >= self._limits.per_caller:
            raise ResourceExhausted(
                f"at most {self._limits.per_caller} concurrent watches per caller",
                reason="WATCH_LIMIT_PER_CALLER",
                metadata={"limit": str(self._limits.per_caller)},
                retry_delay=WATCH_RETRY_SECONDS,
            )
        self._per_caller[caller] += 1
        self._total += 1

    def _release(self, caller: Hashable) -> None:
        self._total -= 1
        self._per_caller[caller] -= 1
        if self._per_caller[caller] <= 0:
            del self._per_caller[caller]

    def _join(self, batch: Hashable, read: Read) -> _SharedPoll:
        poll = self._polls.get(batch)
        if poll is None or poll.task.done():
            # None yet, or it ended (terminal, failed): a watcher that reads the batch running
            # again (retried) starts a new one.
            poll = self._polls[batch] = _SharedPoll(read, self._limits.interval)
        poll.watchers += 1
        return poll

    def _leave(self, batch: Hashable, poll: _SharedPoll) -> None:
        poll.watchers -= 1
        if poll.watchers <= 0:
            poll.task.cancel()
            if self._polls.get(batch) is poll:
                del self._polls[batch]

    async def watch(
        self, caller: Hashable, batch: Hashable, first: Read, shared: Read
    ) -> AsyncGenerator[BatchView, None]:
        """Yield the batch now and after every change, until it is terminal or too old.

        Args:
            caller: who watches (the per-caller limit counts by it).
            batch: which batch (watchers of the same key share one poll).
            first: the caller's own read; raises when the caller may not see the batch.
            shared: the read the shared poll repeats.
        """
        self._admit(caller)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._limits.max_seconds
            started = loop.time()
            view = await first()
            yield view
            if view.terminal:
                return
            # Closed here, not whenever the garbage collector finds it: leaving the shared poll
            # must happen when the watch ends.
            async with aclosing(self._follow(batch, shared, view, started, deadline)) as follow:
                async for later in follow:
                    yield later
        finally:
            self._release(caller)

    async def _follow(
        self, batch: Hashable, read: Read, sent: BatchView, since: float, deadline: float
    ) -> AsyncGenerator[BatchView, None]:
        loop = asyncio.get_running_loop()
        poll = self._join(batch, read)
        last = sent.progress_key()
        try:
            while True:
                changed = poll.changed
                if poll.error is not None:
                    raise poll.error
                view = poll.view
                # Only reads that began after the watcher's own: an older one could show the
                # batch going backwards.
                if view is not None and poll.read_started >= since:
                    if view.progress_key() != last:
                        last = view.progress_key()
                        yield view
                    if view.terminal:
                        return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return  # the maximum lifetime: ends OK, the last state already sent
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    return
        finally:
            self._leave(batch, poll)
