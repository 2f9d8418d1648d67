"""A worker SIGKILLed while it sends reminders, then started again: no holder gets the
reminder twice, and only the reminders the dead worker held can be missing.

Real relay and worker processes, RabbitMQ and PostgreSQL, a "day" of one second. The kill
lands once part of the reminders went out. The jobs the dead worker held unacked come back
to the queue; each channel of a step is taken before its message is sent, so a job delivered
again sends nothing on a channel the dead worker took: what it took and had not sent is lost
(at most its prefetch), and nothing is sent twice. Invitations keep their own bound (within
the prefetch, as the invitations' crash tests hold).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from email import message_from_bytes

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


async def test_sigkill_mid_reminders_never_sends_a_step_twice(
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
    invitations, reminders = _mails(system)
    # Every holder got the invitation; the reminder at most once, missing only where the dead
    # worker had taken it.
    assert len(invitations) == RECORDS
    assert max(reminders.values()) == 1, "a reminder sent twice"
    missing = RECORDS - len(reminders)
    duplicates = sum(n - 1 for n in invitations.values())
    print(
        f"reminders across a SIGKILL: {RECORDS} records, 0 reminders twice, {missing} missing;"
        f" {duplicates} duplicate invitations"
    )
    assert missing <= PREFETCH, f"{missing} reminders missing, bound {PREFETCH}"
    assert duplicates <= PREFETCH, f"{duplicates} duplicate invitations, bound {PREFETCH}"


def _mails(system: System) -> tuple[Counter[str], Counter[str]]:
    """Invitations and reminders received per recipient of the batch."""
    domain = system.batch.rows[0]["email"].split("@", 1)[1]
    invitations: Counter[str] = Counter()
    reminders: Counter[str] = Counter()
    for recipients, content in system.sinks.smtp.messages:
        subject = message_from_bytes(content).get("Subject", "")
        kind = reminders if subject.startswith("Reminder:") else invitations
        for recipient in recipients:
            if recipient.endswith("@" + domain):
                kind[recipient] += 1
    return invitations, reminders
