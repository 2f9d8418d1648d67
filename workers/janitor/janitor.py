"""One janitor pass: the retention purge, then the pruning of each kind of bookkeeping.

Everything crosses tenants, so it runs as the janitor's role through three functions,
``janitor_purge``, ``janitor_prune`` and ``janitor_audit_prune`` (their files say what each
step erases or deletes and why it is safe). Each call is a step of at most ``step_rows`` rows
in its own transaction (autocommit), so the janitor never holds a lock, nor a snapshot, for
longer than one step: the relay, the workers and the dispatchers go on while it works, and
rows they hold are skipped. After each step it rests ``pause`` seconds, and longer when the
step was slow: at least as long as keeps its work to ``share`` of the time (a step of 1,000
records takes some tens of milliseconds on an idle database and much more on a busy one, so a
fixed pause alone would let it take more of a busy database, the very time issuance needs it;
bench/RESULTS.md, "History", has the figures).
A pass that stops (SIGTERM, a crash, a lost connection) leaves every committed step done and
the rest as it was; the next pass starts over from what is committed, so passes are
idempotent and no progress is recorded anywhere but in the rows themselves.

A pass works until nothing is due or ``stop`` is set. The purge works oldest batch first,
so a backlog after downtime drains in the order the data became due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg

from credbatch import audit
from credbatch.metrics import JANITOR_PASS_DURATION, JANITOR_PRUNED, JANITOR_PURGED

log = logging.getLogger(__name__)

# The kinds janitor_prune knows, in the order a pass prunes them (deliveries before the events
# they refer to).
PRUNE_KINDS = (
    "webhook_deliveries",
    "webhook_events",
    "spent_nonces",
    "offers",
    "access_tokens",
    "idempotency_keys",
    "dispatch",
    "send_stamps",
)

# The audit trail's own, longer retention, counted as one more kind.
AUDIT_KIND = "audit_events"

_PURGE = "SELECT tenant_id, batch_id, purged, done FROM janitor_purge($1, $2)"
_PRUNE = "SELECT janitor_prune($1, $2, $3)"


@dataclass(frozen=True)
class Periods:
    """How long each kind is kept: personal data after its batch ends (days, the tenant may
    set its own), the audit trail (days), the rest past the moment that makes it prunable
    (see ``janitor_prune``)."""

    retention_days: int
    audit_days: int
    prune: dict[str, timedelta] = field(default_factory=dict)

    def cutoffs(self, now: datetime) -> Iterable[tuple[str, datetime]]:
        for kind in PRUNE_KINDS:
            yield kind, now - self.prune[kind]


@dataclass
class PassResult:
    """What one pass did: records purged, batches finished, rows pruned per kind."""

    purged: int = 0
    batches_done: int = 0
    pruned: dict[str, int] = field(default_factory=dict)


# The most of the time the janitor works by default (CREDBATCH_JANITOR_SHARE).
DEFAULT_SHARE = 0.02


def rest_after(worked: float, pause: float, share: float) -> float:
    """Seconds to rest after a step that took ``worked`` seconds: ``pause`` at least, and
    enough that working takes no more than ``share`` of the time."""
    return max(pause, worked * (1 - share) / share)


async def _rest(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds`` between two steps, or until ``stop`` is set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def purge(
    pool: asyncpg.Pool,
    retention_days: int,
    step_rows: int,
    stop: asyncio.Event,
    result: PassResult,
    pause: float = 0.0,
    share: float = DEFAULT_SHARE,
) -> None:
    """Purge step after step until nothing is due or ``stop`` is set."""
    while not stop.is_set():
        started = time.monotonic()
        row = await pool.fetchrow(_PURGE, retention_days, step_rows)
        if row is None:
            return
        result.purged += row["purged"]
        JANITOR_PURGED.add(row["purged"], {"credbatch.janitor.reason": "retention"})
        if row["done"]:
            result.batches_done += 1
        elif row["purged"] == 0:
            # Every record left is locked by someone else: come back next pass rather than spin.
            return
        await _rest(stop, rest_after(time.monotonic() - started, pause, share))


async def prune(
    kind: str,
    step: Callable[[], Awaitable[int]],
    step_rows: int,
    stop: asyncio.Event,
    result: PassResult,
    pause: float = 0.0,
    share: float = DEFAULT_SHARE,
) -> None:
    """Run ``step`` (one pruning transaction of ``kind``, returning the rows it deleted) until
    a step finds fewer than ``step_rows`` rows."""
    while not stop.is_set():
        started = time.monotonic()
        deleted = await step()
        result.pruned[kind] = result.pruned.get(kind, 0) + deleted
        JANITOR_PRUNED.add(deleted, {"credbatch.janitor.kind": kind})
        if deleted < step_rows:
            return
        await _rest(stop, rest_after(time.monotonic() - started, pause, share))


async def run_pass(
    pool: asyncpg.Pool,
    periods: Periods,
    step_rows: int,
    stop: asyncio.Event,
    pause: float = 0.0,
    share: float = DEFAULT_SHARE,
) -> PassResult:
    """One pass: the purge, then each kind of pruning with cut-offs fixed at its start."""
    started = time.monotonic()
    result = PassResult()
    await purge(pool, periods.retention_days, step_rows, stop, result, pause, share)
    for kind, before in periods.cutoffs(datetime.now(UTC)):
        step = partial(pool.fetchval, _PRUNE, kind, before, step_rows)
        await prune(kind, step, step_rows, stop, result, pause, share)
    # The audit trail's own, longer retention, through its own function.
    audit_step = partial(audit.prune_step, pool, periods.audit_days, step_rows)
    await prune(AUDIT_KIND, audit_step, step_rows, stop, result, pause, share)
    JANITOR_PASS_DURATION.record(time.monotonic() - started)
    return result


async def run(
    pool: asyncpg.Pool,
    periods: Periods,
    step_rows: int,
    interval: float,
    stop: asyncio.Event,
    pause: float = 0.0,
    share: float = DEFAULT_SHARE,
) -> None:
    """Pass after pass, ``interval`` seconds apart, until ``stop`` is set. A pass that fails
    (the database unreachable) is logged and the next one tries again."""
    while not stop.is_set():
        try:
            result = await run_pass(pool, periods, step_rows, stop, pause, share)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            log.warning(
                "janitor pass failed: %s; retrying in %.0fs", type(error).__name__, interval
            )
        else:
            if result.purged or any(result.pruned.values()):
                log.info(
                    "janitor pass: %d records purged (%d batches done), pruned %s",
                    result.purged,
                    result.batches_done,
                    ", ".join(f"{k} {n}" for k, n in result.pruned.items() if n) or "nothing",
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
