"""A running system for fault tests: the relay and issuance workers as real processes.

Each test gets a private database (``fair_db``: the relay serves every tenant of its
database, so no other test's records may sit there), its own vhost, the mail sink, one relay
process (with its sweeper and dead-letter consumer) and worker processes it can kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from credbatch.config import Settings
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import (
    Arranged,
    Sinks,
    arrange_batch,
    spawn_worker,
    stop_process,
    worker_env,
)

# One worker's share of the system: the jobs it holds unacked (prefetch) bound the
# invitations it can have in flight when it dies.
PREFETCH = 100
STUCK_AFTER = 3.0


def fault_settings(worker_settings: Settings, fair: FairDb) -> Settings:
    """Worker settings on the private database, with in-flight caps for one worker."""
    return worker_settings.with_overrides(
        database_url=fair.settings.database_url,
        app_database_url=fair.settings.app_database_url,
        worker_prefetch=PREFETCH,
        relay_max_in_flight=300,
        relay_tenant_in_flight=250,
        relay_batch_in_flight=250,
        stuck_after=STUCK_AFTER,
    )


def spawn_relay(settings: Settings) -> subprocess.Popen[bytes]:
    """``python -m workers.relay`` with the settings' caps and sweeper delay."""
    env = worker_env(settings)
    env.update(
        CREDBATCH_RELAY_MAX_IN_FLIGHT=str(settings.relay_max_in_flight),
        CREDBATCH_RELAY_TENANT_IN_FLIGHT=str(settings.relay_tenant_in_flight),
        CREDBATCH_RELAY_BATCH_IN_FLIGHT=str(settings.relay_batch_in_flight),
        CREDBATCH_RELAY_POLL_INTERVAL="0.1",
        CREDBATCH_STUCK_AFTER=str(settings.stuck_after),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "workers.relay"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None,
    )


@dataclass
class System:
    """The processes of one fault test and the batch they work on."""

    settings: Settings
    fair: FairDb
    sinks: Sinks
    batch: Arranged
    relay: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def start(self) -> None:
        self.relay = spawn_relay(self.settings)
        self.workers.append(spawn_worker(self.settings))
        # Into the outbox, as an upload leaves its records.
        await self.fair.owner.execute(
            "UPDATE records SET state = 'PENDING', queued_at = NULL WHERE batch_id = $1",
            self.batch.batch_id,
        )

    async def stop(self) -> None:
        for process in [*self.workers, *([self.relay] if self.relay else [])]:
            await stop_process(process)

    async def progressed(self, done: int, timeout: float = 30) -> None:
        """Wait until ``done`` records are past issuance."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.finished() < done:
            assert loop.time() < deadline, f"fewer than {done} records done in {timeout} s"
            for process in [*self.workers, *([self.relay] if self.relay else [])]:
                assert process.poll() is None, "a process of the system died"
            await asyncio.sleep(0.05)

    async def finished(self) -> int:
        count: int = await self.fair.owner.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND state IN ('ISSUED', 'INVITED')",
            self.batch.batch_id,
        )
        return count

    def mails(self) -> Counter[str]:
        """Mails received per recipient of this batch."""
        domain = self.batch.rows[0]["email"].split("@", 1)[1]
        received: Counter[str] = Counter()
        for recipients, _ in self.sinks.smtp.messages:
            for recipient in recipients:
                if recipient.endswith("@" + domain):
                    received[recipient] += 1
        return received


async def arrange_system(settings: Settings, fair: FairDb, sinks: Sinks, records: int) -> System:
    batch = await arrange_batch(fair.owner, records, mediums=("EMAIL",), certificate=False)
    return System(settings, fair, sinks, batch)


@contextlib.asynccontextmanager
async def system_for_faults(
    worker_settings: Settings, fair: FairDb, sinks: Sinks, records: int
) -> AsyncIterator[System]:
    """A batch of ``records`` with fault settings; its processes are stopped at the end."""
    running = await arrange_system(fault_settings(worker_settings, fair), fair, sinks, records)
    try:
        yield running
    finally:
        await running.stop()


@dataclass(frozen=True)
class Figures:
    """What a fault test measured, printed for bench/RESULTS.md."""

    records: int
    seconds: float
    duplicates: int
    bound: int

    def line(self, name: str) -> str:
        return (
            f"{name}: {self.records} records completed in {self.seconds:.1f} s, "
            f"{self.duplicates} duplicate invitations (bound {self.bound})"
        )


async def assert_completed_once(owner: asyncpg.Pool, system: System, bound: int) -> int:
    """The batch COMPLETED, one credential per record, every holder mailed, duplicates bounded.

    Returns the number of duplicate invitations.
    """
    batch_id = system.batch.batch_id
    states = dict(
        await owner.fetch(
            "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state", batch_id
        )
    )
    assert states == {"INVITED": len(system.batch.record_ids)}, states
    per_record = await owner.fetch(
        """
        SELECT r.id, count(c.id) AS n FROM records r
        LEFT JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
        WHERE r.batch_id = $1 GROUP BY r.id
        """,
        batch_id,
    )
    assert {row["n"] for row in per_record} == {1}
    mails = system.mails()
    assert len(mails) == len(system.batch.record_ids), "a holder got no invitation"
    duplicates = sum(n - 1 for n in mails.values())
    assert duplicates <= bound, f"{duplicates} duplicate invitations, bound {bound}"
    return duplicates


async def wait_terminal(owner: asyncpg.Pool, batch_id: uuid.UUID, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = await owner.fetchval("SELECT state FROM batches WHERE id = $1", batch_id)
        if state in ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELLED"):
            return str(state)
        if loop.time() > deadline:
            counts = await owner.fetch(
                "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state",
                batch_id,
            )
            raise AssertionError(f"batch still {state} after {timeout} s: {counts}")
        await asyncio.sleep(0.1)
