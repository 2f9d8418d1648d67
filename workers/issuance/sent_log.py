"""Recording each invitation as the server accepts it, in small windows.

The outcome transaction records a group's sends only once the whole group is done; a worker
killed before it would send the whole group again on redelivery. Here every accepted send is
stamped (a row of ``record_sends``) within about ``window`` seconds, so a restarted worker
re-sends only what was truly in flight: sends not yet accepted, and those of the last window. A
reminder's send is stamped the same way, with its step, on the record's reminder schedule
(``record_reminders``), so no step of a schedule goes out twice either. Stamps of all groups are
written together, one short transaction per tenant per window, its commit not waiting for the
disk (a stamp only needs to be seen by the next worker, not to outlive a crash of the database
server). A window that fails to write is only logged: the outcome transaction stamps the same
sends again (``coalesce`` keeps the first time), and that write is held through a database
outage until it is taken (``workers.issuance.durable``). So while the worker lives no accepted
send is lost; the windows only bound what a worker killed mid-group sends twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from credbatch.schema.model import Medium
from credbatch.tenancy import service_scope, tenant_transaction
from workers.issuance import outcome_repository as outcome_repo

log = logging.getLogger(__name__)

# Each window is a transaction of its own: at 10 ms one held about 6 sends and the windows were a
# third of a worker's statements. At 30 ms a worker killed mid-group sends again the accepted
# invitations of the last 30 ms, about ten at full speed, fewer than a group holds.
WINDOW_SECONDS = 0.03

# (record, medium, reminder step: 0 = the invitation)
Sent = tuple[uuid.UUID, Medium, int]


class SendLog:
    """Stamps accepted sends per window; ``note`` returns once its stamp was written (or not)."""

    def __init__(self, pool: asyncpg.Pool, *, window: float = WINDOW_SECONDS) -> None:
        self._pool = pool
        self._window = window
        self._pending: dict[uuid.UUID, set[Sent]] = {}
        # The SMS provider's message id of each record sent an SMS, per tenant.
        self._sids: dict[uuid.UUID, dict[uuid.UUID, str]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def note(
        self,
        tenant_id: uuid.UUID,
        record_id: uuid.UUID,
        medium: Medium,
        message_id: str | None = None,
        reminder_step: int = 0,
    ) -> None:
        """Record that ``medium`` was sent to the record (with the SMS provider's id of the
        message, which its status callbacks name), or step ``reminder_step`` of its reminders;
        waits for the window to be written."""
        self._pending.setdefault(tenant_id, set()).add((record_id, medium, reminder_step))
        if medium is Medium.SMS and message_id is not None and not reminder_step:
            self._sids.setdefault(tenant_id, {})[record_id] = message_id
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = _spawn(self._flush)
        await asyncio.shield(waiter)

    async def _flush(self) -> None:
        await asyncio.sleep(self._window)
        pending, self._pending = self._pending, {}
        sids, self._sids = self._sids, {}
        waiters, self._waiters = self._waiters, []
        try:
            await asyncio.gather(
                *(self._write(t, sent, sids.get(t, {})) for t, sent in pending.items())
            )
        finally:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if self._pending:
                # Noted while this window was being written: the next window takes them.
                self._flusher = _spawn(self._flush)

    async def _write(
        self, tenant_id: uuid.UUID, sent: set[Sent], sids: dict[uuid.UUID, str]
    ) -> None:
        try:
            # Not waiting for the disk: a stamp bounds what a killed worker sends again, and
            # a committed one is seen at once whether or not the worker lives on; only a crash
            # of the database server in the next few hundred milliseconds could lose it, and
            # the outcome transaction, which waits, stamps the same sends again.
            async with tenant_transaction(
                self._pool, service_scope(tenant_id), durable=False
            ) as conn:
                await outcome_repo.stamp_sent(
                    conn,
                    tenant_id,
                    [r for r, m, step in sent if m is Medium.EMAIL and not step],
                    [r for r, m, step in sent if m is Medium.SMS and not step],
                    sids,
                )
                await outcome_repo.stamp_reminders(
                    conn, tenant_id, [(r, m, step) for r, m, step in sent if step]
                )
        except Exception as error:
            log.warning("recording %d sends failed: %s", len(sent), type(error).__name__)


_tasks: set[asyncio.Task[None]] = set()


def _spawn(work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
    task = asyncio.create_task(work())
    # A reference until it ends, so the loop cannot collect a window being written.
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task
