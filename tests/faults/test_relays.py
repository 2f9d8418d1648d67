"""Two relays on one batch, one SIGKILLed in the middle of a window: the other carries on.

Two relay processes (each with its sweeper, dead-letter consumer and count fold) and two
workers work on one batch. Once it is well under way, the test waits for a relay to be inside
a window (its claim transaction open, its jobs being published) and SIGKILLs that one. Its
transaction rolls back, so its claimed records are PENDING again and the other relay publishes
them: some of them twice, if the broker had confirmed them before the kill. The batch still
completes with one credential per record and every holder invited, duplicate invitations
within one worker's prefetch as in ``test_faults``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from tests.faults.harness import (
    PREFETCH,
    Figures,
    System,
    assert_completed_once,
    spawn_relay,
    system_for_faults,
    wait_terminal,
)
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import Sinks, spawn_worker, stop_process
from tests.fixtures.scrape import socket_ports

RECORDS = 1500
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# A relay's connection inside a window: it claimed records and waits for the broker's
# confirms before it marks them QUEUED and commits.
_IN_WINDOW = """
SELECT client_port FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'relay'
  AND state = 'idle in transaction' AND query LIKE '%outbox_claim%'
"""


@pytest_asyncio.fixture(loop_scope="session")
async def system(fair_db: FairDb, worker_settings: Settings, sinks: Sinks) -> AsyncIterator[System]:
    async with system_for_faults(worker_settings, fair_db, sinks, RECORDS) as running:
        yield running


async def relay_in_window(
    owner: asyncpg.Pool, relays: Sequence[subprocess.Popen[bytes]], timeout: float = 20
) -> subprocess.Popen[bytes]:
    """The first of ``relays`` seen holding a window's transaction open."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for row in await owner.fetch(_IN_WINDOW):
            for relay in relays:
                if row["client_port"] in socket_ports(relay.pid):
                    return relay
        await asyncio.sleep(0.005)
    raise AssertionError(f"no relay was seen inside a window in {timeout} s")


async def test_one_of_two_relays_killed_inside_a_window(system: System) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.start()
    second = spawn_relay(system.settings)
    system.workers.append(spawn_worker(system.settings))
    try:
        await system.progressed(RECORDS // 4)
        assert system.relay is not None
        relays = [system.relay, second]
        victim = await relay_in_window(system.fair.owner, relays)
        await stop_process(victim, signal.SIGKILL)
        (survivor,) = [relay for relay in relays if relay is not victim]
        print(f"killed relay {victim.pid} inside a window; relay {survivor.pid} goes on")

        state = await wait_terminal(system.fair.owner, system.batch.batch_id, timeout=60)
        assert state == "COMPLETED"
        took = loop.time() - started
        duplicates = await assert_completed_once(system.fair.owner, system, PREFETCH)
        print(Figures(RECORDS, took, duplicates, PREFETCH).line("one of two relays SIGKILLed"))
        assert survivor.poll() is None, "the surviving relay exited"
        # Nothing of the batch is left claimed or in flight.
        open_records = await system.fair.owner.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND state <> 'INVITED'",
            system.batch.batch_id,
        )
        assert open_records == 0
    finally:
        await stop_process(second)
