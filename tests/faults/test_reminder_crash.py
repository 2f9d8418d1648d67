"""A worker SIGKILLed while it sends reminders, then started again: every holder gets the
batch's reminder, and reminders sent twice stay within what one worker can have in flight.

Real relay and worker processes, RabbitMQ and PostgreSQL, a "day" of one second. The kill
lands once part of the reminders went out. The jobs the dead worker held unacked come back
to the queue; a reminder it sent but had not stamped yet (``SendLog``'s window) is the only
one sent again, so duplicates (invitations and reminders together) stay within its prefetch,
the bound the invitations' crash tests hold to.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from credbatch.config import Settings
from tests.faults.harness import PREFETCH, System, system_for_faults, wait_terminal
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import Sinks, spawn_worker, stop_process

RECORDS = 1000
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

STAMPED = "SELECT count(*) FROM record_reminders WHERE batch_id = $1 AND email_step >= 1"
FINISHED = "SELECT count(*) FROM record_reminders WHERE batch_id = $1 AND step = 2 AND sent = 1"


@pytest_asyncio.fixture(loop_scope="session")
async def system(fair_db: FairDb, worker_settings: Settings, sinks: Sinks) -> AsyncIterator[System]:
    await fair_db.owner.execute("DELETE FROM record_reminders")
    settings = worker_settings.with_overrides(reminder_day_seconds=1.0)
    async with system_for_faults(settings, fair_db, sinks, RECORDS) as running:
        await fair_db.owner.execute(
            "UPDATE batches SET reminder_days = '{2}' WHERE id = $1", running.batch.batch_id
        )
        yield running
    await fair_db.owner.execute("DELETE FROM record_reminders")


async def _count(system: System, query: str) -> int:
    count: int = await system.fair.owner.fetchval(query, system.batch.batch_id)
    return count


async def test_sigkill_mid_reminders_sends_each_step_once_within_the_bound(
    system: System,
) -> None:
    loop = asyncio.get_running_loop()
    await system.start()
    deadline = loop.time() + 60
    while await _count(system, STAMPED) < RECORDS // 5:
        assert loop.time() < deadline, "no reminders went out"
        await asyncio.sleep(0.02)
    [worker] = system.workers
    assert await stop_process(worker, signal.SIGKILL) == -signal.SIGKILL
    assert await _count(system, FINISHED) < RECORDS, "the kill came too late to test anything"
    system.workers = [spawn_worker(system.settings)]
    started = loop.time()
    assert await wait_terminal(system.fair.owner, system.batch.batch_id, 60) == "COMPLETED"
    while await _count(system, FINISHED) < RECORDS:
        assert loop.time() - started < 60, f"{await _count(system, FINISHED)} reminders done"
        await asyncio.sleep(0.1)
    states = await system.fair.owner.fetch(
        "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state",
        system.batch.batch_id,
    )
    assert {r["state"]: r["count"] for r in states} == {"INVITED": RECORDS}
    mails = system.mails()
    # Every holder got the invitation and the reminder, at least once each.
    assert len(mails) == RECORDS and min(mails.values()) >= 2
    duplicates = sum(n - 2 for n in mails.values())
    print(f"reminders across a SIGKILL: {RECORDS} records, {duplicates} duplicate mails")
    assert duplicates <= PREFETCH, f"{duplicates} duplicate mails, bound {PREFETCH}"
