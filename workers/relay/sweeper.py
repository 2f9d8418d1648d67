"""The sweeper: records that made no progress are dispatched again, so every batch ends.

Each pass is one database transaction (``credbatch/db/functions/sweep_stuck.sql``): records
QUEUED or ISSUED with no change for ``stuck_after`` seconds (plus the retry delay of their
attempt) are taken ``FOR UPDATE SKIP LOCKED``, at most ``limit`` of them:

* QUEUED ones go back to PENDING and the relay's fair claim publishes them again;
* ISSUED ones get a job published here, confirmed before the commit (as a relay window), so
  the worker sends the invitations not yet recorded as sent;
* open records of a CANCELLED batch become CANCELLED (nobody else would close them).

If the publish fails the transaction rolls back: nothing was changed and the next pass tries
again. A record that was only slow, not lost, gets a second job; the worker's per-record
guards (one credential per record, ``*_sent_at`` per medium) keep that harmless.

Every ``expiry_interval`` seconds the same loop runs expiry passes
(``credbatch/db/functions/sweep_expired.sql``): INVITED records whose claim link ran out
become EXPIRED, at most ``limit`` per transaction, passes following each other while they
are full. Several relays' passes skip each other's locked rows, as the stuck passes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from opentelemetry import trace

from credbatch.batches.model import RecordState
from credbatch.messaging import PublishError, trace_headers
from credbatch.metrics import RECORD_TRANSITIONS
from workers.relay.relay import Publisher, _Claimed, _TraceHeaders, job_message

log = logging.getLogger(__name__)

_SWEEP = """
SELECT tenant_id, batch_id, record_id, attempt, traceparent, action
FROM sweep_stuck($1, $2::double precision[], $3)
"""


_EXPIRE = "SELECT tenant_id, batch_id, record_id FROM sweep_expired($1)"


@dataclass(frozen=True)
class SweepResult:
    """What one pass changed."""

    requeued: int = 0
    republished: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.requeued + self.republished + self.cancelled


def _log_batches(rows: Sequence[asyncpg.Record]) -> None:
    """One WARNING per batch a committed pass touched, in the trace of the batch's upload.

    A swept record is a job lost or stalled somewhere (a worker killed, a broker restart):
    worth a look when it happens often, so each line names its tenant and batch.
    """
    actions: dict[tuple[uuid.UUID, uuid.UUID], Counter[str]] = {}
    traceparents: dict[tuple[uuid.UUID, uuid.UUID], str | None] = {}
    for row in rows:
        key = (row["tenant_id"], row["batch_id"])
        actions.setdefault(key, Counter())[row["action"]] += 1
        traceparents.setdefault(key, row["traceparent"])
    for (tenant_id, batch_id), done in actions.items():
        parent = trace_headers.extract({"traceparent": traceparents[(tenant_id, batch_id)] or ""})
        with trace.use_span(trace.get_current_span(parent), end_on_exit=False):
            log.warning(
                "sweeper: tenant %s batch %s: %d stuck records requeued, %d republished, "
                "%d cancelled",
                tenant_id,
                batch_id,
                done["requeued"],
                done["republish"],
                done["cancelled"],
                extra={
                    "tenant_id": str(tenant_id),
                    "batch_id": str(batch_id),
                    "requeued": done["requeued"],
                    "republished": done["republish"],
                    "cancelled": done["cancelled"],
                },
            )


async def expire_links(pool: asyncpg.Pool, limit: int) -> int:
    """One expiry pass: at most ``limit`` INVITED records whose link ran out become EXPIRED.

    ``pool`` connects as the relay's role (``sweep_expired`` is its alone); how many expired.
    """
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_EXPIRE, limit)
    if rows:
        RECORD_TRANSITIONS.add(len(rows), {"credbatch.record.state": RecordState.EXPIRED.value})
    per_batch = Counter((row["tenant_id"], row["batch_id"]) for row in rows)
    for (tenant_id, batch_id), n in per_batch.items():
        log.info(
            "expiry: tenant %s batch %s: %d claim links ran out unclaimed",
            tenant_id,
            batch_id,
            n,
            extra={"tenant_id": str(tenant_id), "batch_id": str(batch_id), "expired": n},
        )
    return len(rows)


class Sweeper:
    """Runs ``sweep_stuck`` passes on the relay's pool and publisher."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        stuck_after: float,
        retry_delays: Sequence[float],
        limit: int = 500,
        publish_timeout: float = 10.0,
        interval: float | None = None,
        expiry_interval: float = 30.0,
    ) -> None:
        if stuck_after <= 0:
            raise ValueError(f"stuck_after must be positive, got {stuck_after}")
        self._pool = pool
        self._publisher = publisher
        self._stuck_after = stuck_after
        self._delays = [float(d) for d in retry_delays]
        self._limit = limit
        self._publish_timeout = publish_timeout
        # Often enough that a stuck record waits at most about 1.5 x stuck_after.
        self._interval = interval if interval is not None else max(0.5, stuck_after / 2)
        self._expiry_interval = expiry_interval

    async def sweep_once(self) -> SweepResult:
        """One pass: at most ``limit`` records, published and committed together."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_SWEEP, self._stuck_after, self._delays, self._limit)
            if not rows:
                return SweepResult()
            actions = [row["action"] for row in rows]
            republish = [_Claimed(*row[:5]) for row in rows if row["action"] == "republish"]
            if republish:
                traces = _TraceHeaders()
                messages = [job_message(c, traces.headers(c.traceparent)) for c in republish]
                # All or nothing: a record whose job was not confirmed must not look touched,
                # or it would wait another stuck_after before the next try.
                await self._publisher.publish_many(messages, self._publish_timeout)
        result = SweepResult(
            requeued=actions.count("requeued"),
            republished=len(republish),
            cancelled=actions.count("cancelled"),
        )
        _log_batches(rows)
        return result

    async def expire_once(self) -> int:
        """One expiry pass (``expire_links``) on the sweeper's pool."""
        return await expire_links(self._pool, self._limit)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until ``stop`` is set; a full pass goes straight on to the next one."""
        next_expiry = time.monotonic()
        while not stop.is_set():
            delay = self._interval
            try:
                result = await self.sweep_once()
                if result.total >= self._limit:
                    delay = 0.0
                if time.monotonic() >= next_expiry:
                    if await self.expire_once() >= self._limit:
                        delay = 0.0
                    else:
                        next_expiry = time.monotonic() + self._expiry_interval
                delay = min(delay, max(0.0, next_expiry - time.monotonic()))
            except PublishError:
                log.warning("sweeper: republished jobs not confirmed; retrying next pass")
            except (asyncpg.PostgresError, OSError, ConnectionError, TimeoutError) as error:
                log.warning("sweeper: pass failed (%s); retrying", type(error).__name__)
            except Exception:
                # The broker client raises a family of its own; nothing may end the sweeper.
                log.exception("sweeper: pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
