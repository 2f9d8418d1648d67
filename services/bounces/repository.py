"""Recording bounces and receipts on their records, as the public endpoints' role, in groups.

The role reads no table: ``public_email_deliveries`` (SECURITY DEFINER) changes exactly the
email delivery columns of the records named, whose VERP MACs the caller checked, when the send
a report names is still the record's current one.

Each report's SMTP reply waits until its report is committed (so "250" means recorded), and
a commit per report would bound a receiver by the database's commit rate. So the reports
that arrive while a write is under way, or within ``window`` seconds of the first, go
together in one statement and one commit: under load a group holds what the connections
delivered meanwhile, idle a report waits ``window`` at most. A group that fails fails each of
its reports (their senders get 451 and try again later); nothing else is shared between
reports, so a receiver keeps no state across messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from functools import partial
from typing import Literal

import asyncpg

from credbatch.db.retry import retry_on_conflict
from credbatch.delivery.dsn import Report
from credbatch.delivery.verp import Send
from credbatch.errors import Aborted

Outcome = Literal["recorded", "unchanged", "stale", "gone", "unknown"]

_RECORD = "SELECT public_email_deliveries($1, $2, $3, $4, $5)"
# A group is written once it holds this many, without waiting for the window.
MAX_GROUP = 500


async def record_email_reports(
    conn: asyncpg.Connection | asyncpg.Pool, reports: Sequence[tuple[Send, Report]]
) -> list[Outcome]:
    """Record each (send, report) on its record's email channel; what became of each."""
    outcomes: list[Outcome] = await conn.fetchval(
        _RECORD,
        [send.record_id for send, _ in reports],
        [send.number for send, _ in reports],
        [report.state.value for _, report in reports],
        [report.code for _, report in reports],
        [report.diagnostic for _, report in reports],
    )
    return outcomes


class ReportWriter:
    """Writes reports in groups through ``pool``; ``record`` returns once its group committed."""

    def __init__(self, pool: asyncpg.Pool, *, window: float = 0.002) -> None:
        self._pool = pool
        self._window = window
        self._pending: list[tuple[Send, Report, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._full = asyncio.Event()

    async def record(self, send: Send, report: Report) -> Outcome:
        """Record one report.

        Raises:
            OSError, asyncpg.PostgresError, asyncpg.InterfaceError: its group was not written.
        """
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((send, report, future))
        if len(self._pending) >= MAX_GROUP:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            self._full.clear()
            if len(self._pending) < MAX_GROUP:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._window)
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            reports = [(send, report) for send, report, _ in group]
            try:
                # A receipt can arrive while the worker still writes its record's outcome: the
                # two lock the same rows, and a deadlock between them is run again.
                outcomes = await retry_on_conflict(
                    partial(record_email_reports, self._pool, reports)
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Aborted) as error:
                # Conflicts every time (Aborted) fail the group like any database error: each
                # sender gets 451 and tries again later.
                failure = error.__cause__ if isinstance(error, Aborted) else error
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(failure or error)
                continue
            for (_, _, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
