"""Many small batches, and a tenant's own second batch, beside a big one: real relay, worker.

The big batch has 20,000 records and one worker process serves them all; what matters is that
the small batches finish while much of it is still open, which in insertion order (the relay
before fair dispatch) they could not. That the big batch completes too is shown by
``test_fair_end_to_end.py``; here what is left of it is failed at the end, so the next test's
relay (same database) does not inherit it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher, connect, declare_topology
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import arrange_batch, spawn_worker, stop_process
from workers.relay.main import dispatch_limits
from workers.relay.relay import OutboxRelay

BIG = 20_000
TENANTS, ROWS = 200, 10
OPEN = "SELECT count(*) FROM records WHERE batch_id = $1 AND state IN ('PENDING', 'QUEUED')"
DONE = "SELECT count(*) FROM records WHERE batch_id = $1 AND state NOT IN ('PENDING', 'QUEUED')"


def one_worker(worker_settings: Settings, fair_db: FairDb) -> Settings:
    # One worker (prefetch 100): caps sized for it, as the defaults are for a few workers.
    return worker_settings.with_overrides(
        database_url=fair_db.settings.database_url,
        app_database_url=fair_db.settings.app_database_url,
        relay_max_in_flight=300,
        relay_tenant_in_flight=250,
        relay_batch_in_flight=250,
    )


async def into_outbox(fair: FairDb, batch_ids: Sequence[uuid.UUID]) -> None:
    """Arranged records are QUEUED; make them PENDING in one statement, as uploads land."""
    await fair.owner.execute(
        "UPDATE records SET state = 'PENDING', queued_at = NULL WHERE batch_id = ANY($1)",
        list(batch_ids),
    )


async def fail_leftovers(fair: FairDb, batch_id: uuid.UUID) -> None:
    await fair.owner.execute(
        "UPDATE records SET state = 'FAILED' WHERE batch_id = $1"
        " AND state IN ('PENDING', 'QUEUED', 'ISSUED')",
        batch_id,
    )


@contextlib.asynccontextmanager
async def relay_and_worker(settings: Settings, fair: FairDb) -> AsyncIterator[None]:
    worker = spawn_worker(settings)
    connection = await connect(settings, name="fair-many-relay")
    stop = asyncio.Event()
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        relay = OutboxRelay(
            fair.relay, ConfirmingPublisher(channel), limits=dispatch_limits(settings)
        )
        running = asyncio.create_task(relay.run(stop))
        yield
        stop.set()
        await asyncio.wait_for(running, 30)
    finally:
        stop.set()
        await connection.close()
        await stop_process(worker)


async def big_under_way(fair: FairDb, batch_id: uuid.UUID, done: int = 500) -> None:
    """Wait until the big batch fills the broker and the worker and ``done`` are finished."""
    while await fair.owner.fetchval(DONE, batch_id) < done:
        await asyncio.sleep(0.1)


async def completed_at(fair: FairDb, batch_ids: Sequence[uuid.UUID], timeout: float) -> float:
    """Wait until every batch is COMPLETED; returns the loop time when they were."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        done = await fair.owner.fetchval(
            "SELECT count(*) FROM batches WHERE id = ANY($1) AND state = 'COMPLETED'",
            list(batch_ids),
        )
        if done == len(batch_ids):
            return loop.time()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(batch_ids) - done} of {len(batch_ids)} batches not COMPLETED")


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_two_hundred_small_tenants_finish_beside_a_big_batch(
    fair_db: FairDb, worker_settings: Settings
) -> None:
    settings = one_worker(worker_settings, fair_db)
    big = await arrange_batch(fair_db.owner, BIG, mediums=("EMAIL",), certificate=False)
    slots = asyncio.Semaphore(4)

    async def small() -> uuid.UUID:
        async with slots:
            arranged = await arrange_batch(
                fair_db.owner, ROWS, mediums=("EMAIL",), certificate=False
            )
        # Arranged records are QUEUED, which counts against the relay's in-flight caps: park
        # them FAILED (not in flight) until they go into the outbox.
        await fair_db.owner.execute(
            "UPDATE records SET state = 'FAILED' WHERE batch_id = $1", arranged.batch_id
        )
        return arranged.batch_id

    smalls = await asyncio.gather(*(small() for _ in range(TENANTS)))
    async with relay_and_worker(settings, fair_db):
        await into_outbox(fair_db, [big.batch_id])
        await big_under_way(fair_db, big.batch_id)
        await into_outbox(fair_db, smalls)
        started = asyncio.get_running_loop().time()
        finished = await completed_at(fair_db, smalls, timeout=60)
        left = await fair_db.owner.fetchval(OPEN, big.batch_id)
        print(f"{TENANTS} x {ROWS} rows beside {BIG}: {finished - started:.1f} s, {left} left")
        # None of them waited for the big batch: a good part of it is still to go.
        assert left > BIG // 4, f"only {left} records of the big batch were left"
    await fail_leftovers(fair_db, big.batch_id)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_second_small_batch_of_the_big_batchs_tenant_finishes_first(
    fair_db: FairDb, worker_settings: Settings
) -> None:
    settings = one_worker(worker_settings, fair_db)
    big = await arrange_batch(fair_db.owner, BIG, mediums=("EMAIL",), certificate=False)
    own = await arrange_batch(
        fair_db.owner, 20, mediums=("EMAIL",), certificate=False, tenant_id=big.tenant_id
    )
    async with relay_and_worker(settings, fair_db):
        await into_outbox(fair_db, [big.batch_id])
        await big_under_way(fair_db, big.batch_id)
        await into_outbox(fair_db, [own.batch_id])
        started = asyncio.get_running_loop().time()
        big_done_before = await fair_db.owner.fetchval(DONE, big.batch_id)
        took = await completed_at(fair_db, [own.batch_id], timeout=60) - started
        big_done_meanwhile = await fair_db.owner.fetchval(DONE, big.batch_id) - big_done_before
        left = await fair_db.owner.fetchval(OPEN, big.batch_id)
        print(
            f"the tenant's own 20 rows beside its {BIG}: {took:.2f} s,"
            f" {big_done_meanwhile} of the big one done meanwhile, {left} left"
        )
        assert left > BIG // 2, "the big batch finished first: nothing shows the overtaking"
        # Fair between the tenant's batches, it waits only for what was already in flight (at
        # most the relay's cap) and its share of the rounds after; ten times the cap is a
        # generous bound on both.
        assert big_done_meanwhile < 10 * settings.relay_max_in_flight, (
            f"{big_done_meanwhile} records of the big batch went before its small one's 20"
        )
    await fail_leftovers(fair_db, big.batch_id)
