"""The claim's in-flight rows follow the records in QUEUED, whichever statement moves them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fixtures.dispatch import FairDb, add_pending_batch, claim_and_queue, drain, finish
from workers.relay.relay import DispatchLimits

SAME = """
SELECT (SELECT array_agg(id ORDER BY id) FROM records WHERE state = 'QUEUED')
       IS NOT DISTINCT FROM
       (SELECT array_agg(record_id ORDER BY record_id) FROM dispatch_in_flight)
"""


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_slate(fair_db: FairDb) -> AsyncIterator[None]:
    await drain(fair_db.relay)
    await fair_db.owner.execute("UPDATE records SET state = 'ISSUED' WHERE state = 'QUEUED'")
    await fair_db.owner.execute("UPDATE records SET state = 'INVITED' WHERE state = 'ISSUED'")
    yield


async def test_in_flight_rows_are_the_queued_records(fair_db: FairDb) -> None:
    owner = fair_db.owner
    tenant = uuid.uuid4()
    batch = await add_pending_batch(owner, tenant, 40)
    assert await owner.fetchval("SELECT count(*) FROM dispatch_in_flight") == 0
    assert len(await claim_and_queue(fair_db.relay, 30)) == 30  # the relay's mark
    assert await owner.fetchval(SAME)
    assert await owner.fetchval("SELECT count(*) FROM dispatch_in_flight") == 30
    await finish(owner, batch, 10)  # a worker's outcome
    assert await owner.fetchval(SAME)
    # A cancel and a delete take QUEUED records out.
    await owner.execute(
        "UPDATE records SET state = 'CANCELLED' WHERE id IN (SELECT id FROM records"
        " WHERE batch_id = $1 AND state = 'QUEUED' LIMIT 5)",
        batch,
    )
    assert await owner.fetchval(SAME)
    await owner.execute(
        "DELETE FROM records WHERE id IN (SELECT id FROM records"
        " WHERE batch_id = $1 AND state = 'QUEUED' LIMIT 5)",
        batch,
    )
    assert await owner.fetchval(SAME)
    # Records inserted QUEUED (as test fixtures do) count as well.
    other = await add_pending_batch(owner, tenant, 3)
    await owner.execute("UPDATE records SET state = 'QUEUED' WHERE batch_id = $1", other)
    assert await owner.fetchval(SAME)
    assert await owner.fetchval("SELECT count(*) FROM dispatch_in_flight") == 13


async def test_the_caps_count_the_in_flight_rows(fair_db: FairDb) -> None:
    limits = DispatchLimits(batch_in_flight=25)
    batch = await add_pending_batch(fair_db.owner, uuid.uuid4(), 100)
    assert len(await claim_and_queue(fair_db.relay, 100, limits)) == 25
    assert await claim_and_queue(fair_db.relay, 100, limits) == []
    await finish(fair_db.owner, batch, 10)
    assert len(await claim_and_queue(fair_db.relay, 100, limits)) == 10
