"""Faults against a running batch: each time it reaches COMPLETED, once per record.

Real relay and worker processes, RabbitMQ and PostgreSQL; a fault is injected once the batch
is well under way. After it, every record has exactly one credential and one invitation at
least, and duplicate invitations stay within what one worker can have in flight (its
prefetch: the jobs it held unacked, whose sends may have been accepted but not yet recorded).

The broker restart stops this machine's RabbitMQ application for everyone: tests run one at a
time, and the test waits until the broker serves again before it ends, so the tests after it
find it up (their robust connections reconnect by themselves).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator

import aio_pika
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.messaging import WORK_QUEUE
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

RECORDS = 1500
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest_asyncio.fixture(loop_scope="session")
async def system(fair_db: FairDb, worker_settings: Settings, sinks: Sinks) -> AsyncIterator[System]:
    async with system_for_faults(worker_settings, fair_db, sinks, RECORDS) as running:
        yield running


async def finish(system: System, name: str, started: float) -> None:
    state = await wait_terminal(system.fair.owner, system.batch.batch_id, timeout=60)
    assert state == "COMPLETED"
    took = asyncio.get_running_loop().time() - started
    duplicates = await assert_completed_once(system.fair.owner, system, PREFETCH)
    print(Figures(RECORDS, took, duplicates, PREFETCH).line(name))


async def test_purged_work_queue_is_swept_back(system: System) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.start()
    await system.progressed(RECORDS // 4)
    connection = await aio_pika.connect(system.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(WORK_QUEUE, passive=True)
        purged = await queue.purge()
    finally:
        await connection.close()
    print(f"purged {purged.message_count} messages")
    await finish(system, "work queue purged", started)


async def test_worker_killed_and_another_started(system: System) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.start()
    await system.progressed(RECORDS // 4)
    await stop_process(system.workers[0], signal.SIGKILL)
    system.workers.append(spawn_worker(system.settings))
    await finish(system, "worker SIGKILLed, another started", started)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.mark.timeout(150)
async def test_broker_restarted(system: System) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.start()
    await system.progressed(RECORDS // 4)
    await asyncio.to_thread(rabbitmqctl, "stop_app")
    try:
        # Down long enough for every client to notice, and for the sweeper to find records
        # whose jobs it cannot publish again yet.
        await asyncio.sleep(10)
        for process in [*system.workers, *([system.relay] if system.relay else [])]:
            assert process.poll() is None, "a process exited while the broker was down"
    finally:
        await asyncio.to_thread(rabbitmqctl, "start_app")
        await asyncio.to_thread(rabbitmqctl, "await_startup")
    await finish(system, "RabbitMQ stopped 10 s and started again", started)


async def test_database_connections_terminated(system: System) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.start()
    await system.progressed(RECORDS // 4)
    terminated = await system.fair.owner.fetchval(
        """
        SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE datname = current_database() AND usename = 'credbatch_app'
          AND pid <> pg_backend_pid()
        """
    )
    assert terminated > 0
    print(f"terminated {terminated} backends")
    await finish(system, "application backends terminated", started)


async def test_every_process_killed_and_started_again(system: System) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.start()
    await system.progressed(RECORDS // 3)
    assert system.relay is not None
    await asyncio.gather(
        stop_process(system.workers[0], signal.SIGKILL),
        stop_process(system.relay, signal.SIGKILL),
    )
    system.relay = spawn_relay(system.settings)
    system.workers.append(spawn_worker(system.settings))
    await finish(system, "every process SIGKILLed and started again", started)
