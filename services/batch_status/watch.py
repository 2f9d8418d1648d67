"""Following a batch: poll its progress with back-off and report each change.

Polling reads (a short read-only transaction per poll, no locks kept, nothing on the
workers' write path), so a slow or stuck watcher costs the workers nothing: the next poll
only happens after the previous update was handed to the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from credbatch.batches.model import BatchView

MIN_INTERVAL = 0.25  # at most four updates a second
MAX_INTERVAL = 2.0
BACKOFF = 1.5


async def watch_changes(
    read: Callable[[], Awaitable[BatchView]],
    *,
    min_interval: float = MIN_INTERVAL,
    max_interval: float = MAX_INTERVAL,
) -> AsyncIterator[BatchView]:
    """Yield the batch now and after every change, until it is terminal.

    ``read`` returns the current view (raising when the batch is not visible). The interval
    grows while nothing changes and drops back after a change. Cancellation (client gone,
    deadline) arrives as CancelledError in the sleep or the read and simply ends the watch.
    """
    last: tuple[object, ...] | None = None
    interval = min_interval
    while True:
        view = await read()
        key = view.progress_key()
        if key != last:
            last = key
            interval = min_interval
            yield view
        else:
            interval = min(max_interval, interval * BACKOFF)
        if view.terminal:
            return
        await asyncio.sleep(interval)
