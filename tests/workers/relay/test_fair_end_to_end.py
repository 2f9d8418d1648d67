"""A small batch beside a big one, through the real relay, broker and issuance worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher, connect, declare_topology
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import (
    arrange_batch,
    spawn_worker,
    stop_process,
    wait_for_batch,
)
from workers.relay.main import dispatch_limits
from workers.relay.relay import OutboxRelay

BIG, SMALL = 20_000, 20
DONE = "SELECT count(*) FROM records WHERE batch_id = $1 AND state NOT IN ('PENDING', 'QUEUED')"


async def into_outbox(fair: FairDb, batch_id: uuid.UUID) -> None:
    """Arranged records are QUEUED; make them PENDING, as an upload leaves them."""
    await fair.owner.execute(
        "UPDATE records SET state = 'PENDING', queued_at = NULL WHERE batch_id = $1", batch_id
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_small_batch_finishes_while_a_big_one_runs(
    fair_db: FairDb, worker_settings: Settings
) -> None:
    # One worker (prefetch 100): caps sized for it, as the defaults are for a few workers.
    settings = worker_settings.with_overrides(
        database_url=fair_db.settings.database_url,
        app_database_url=fair_db.settings.app_database_url,
        relay_max_in_flight=300,
        relay_tenant_in_flight=250,
        relay_batch_in_flight=250,
    )
    big = await arrange_batch(fair_db.owner, BIG, mediums=("EMAIL",), certificate=False)
    small = await arrange_batch(fair_db.owner, SMALL, mediums=("EMAIL",), certificate=False)
    worker = spawn_worker(settings)
    connection = await connect(settings, name="fair-e2e-relay")
    stop = asyncio.Event()
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        relay = OutboxRelay(
            fair_db.relay, ConfirmingPublisher(channel), limits=dispatch_limits(settings)
        )
        running = asyncio.create_task(relay.run(stop))
        await into_outbox(fair_db, big.batch_id)
        loop = asyncio.get_running_loop()
        # Let the big batch fill the broker and the worker first.
        while await fair_db.owner.fetchval(DONE, big.batch_id) < 500:
            await asyncio.sleep(0.1)
        await into_outbox(fair_db, small.batch_id)
        started = loop.time()
        big_done_before = await fair_db.owner.fetchval(DONE, big.batch_id)
        assert await wait_for_batch(fair_db.owner, small.batch_id, timeout=60) == "COMPLETED"
        took = loop.time() - started
        big_done_meanwhile = await fair_db.owner.fetchval(DONE, big.batch_id) - big_done_before
        print(
            f"small batch of {SMALL} beside {BIG}: {took:.2f} s,"
            f" {big_done_meanwhile} of the big one done meanwhile"
        )
        left = await fair_db.owner.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND state IN ('PENDING', 'QUEUED')",
            big.batch_id,
        )
        # In insertion order it would wait for every record of the big batch ahead of it.
        assert left > 500, "the big batch finished first: nothing shows the overtaking"
        # Fair, it waits only for what was already in flight (at most the relay's cap) and
        # its share of the rounds after; ten times the cap is a generous bound on both.
        assert big_done_meanwhile < 10 * settings.relay_max_in_flight, (
            f"{big_done_meanwhile} records of the big batch went before the small one's {SMALL}"
        )
        assert await wait_for_batch(fair_db.owner, big.batch_id, timeout=180) == "COMPLETED"
        stop.set()
        await asyncio.wait_for(running, 30)
    finally:
        stop.set()
        await connection.close()
        await stop_process(worker)
