"""outbox_claim's fair choice, caps and locking, in a database of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from tests.fixtures.dispatch import (
    FairDb,
    add_pending_batch,
    claim,
    claim_and_queue,
    drain,
    finish,
)
from workers.relay.relay import DispatchLimits

SMALL_PICKS = DispatchLimits(quantum=10)


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_slate(fair_db: FairDb) -> AsyncIterator[None]:
    """Nothing PENDING or in flight from an earlier test."""
    await drain(fair_db.relay)
    await fair_db.owner.execute("UPDATE records SET state = 'ISSUED' WHERE state = 'QUEUED'")
    yield


def batches_of(rows: list[asyncpg.Record], count: int | None = None) -> Counter[uuid.UUID]:
    return Counter(r["batch_id"] for r in rows[:count])


async def test_small_batch_interleaves_with_a_big_one(fair_db: FairDb) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    big = await add_pending_batch(fair_db.owner, a, 2000)
    first = await claim_and_queue(fair_db.relay, 100, SMALL_PICKS)
    assert batches_of(first) == {big: 100}

    # Tenant B's small batch and a second batch of tenant A arrive while A's is running.
    small = await add_pending_batch(fair_db.owner, b, 20)
    second_a = await add_pending_batch(fair_db.owner, a, 20)
    rows = await claim_and_queue(fair_db.relay, 60, SMALL_PICKS)
    # B is served in the first picks, not after A's 1,900 remaining records; A's share goes
    # to both of its batches in turn.
    assert batches_of(rows, 40)[small] == 20
    counts = batches_of(rows)
    assert counts[small] == 20
    assert counts[second_a] == 20
    assert counts[big] == 20
    # Within a batch, CSV order.
    small_rows = [r["record_id"] for r in rows if r["batch_id"] == small]
    order = await fair_db.owner.fetch(
        "SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number", small
    )
    assert small_rows == [r["id"] for r in order]


async def test_new_tenant_starts_at_the_minimum_without_credit(fair_db: FairDb) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await add_pending_batch(fair_db.owner, a, 3000)
    for _ in range(5):  # A alone for a while: 1,000 records
        assert len(await claim_and_queue(fair_db.relay, 200, SMALL_PICKS)) == 200
    late = await add_pending_batch(fair_db.owner, b, 3000)
    rows = await claim_and_queue(fair_db.relay, 200, SMALL_PICKS)
    # Level with A from its first claim on: half each (one pick of slack), never all 200
    # as it would get if it started at virtual time 0.
    assert 90 <= batches_of(rows)[late] <= 110
    rows = await claim_and_queue(fair_db.relay, 200, SMALL_PICKS)
    assert 90 <= batches_of(rows)[late] <= 110


async def test_idle_tenant_comes_back_without_credit(fair_db: FairDb) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await add_pending_batch(fair_db.owner, b, 10)
    await add_pending_batch(fair_db.owner, a, 3000)
    await claim_and_queue(fair_db.relay, 100, SMALL_PICKS)  # B finishes, A goes on
    for _ in range(5):
        await claim_and_queue(fair_db.relay, 200, SMALL_PICKS)
    back = await add_pending_batch(fair_db.owner, b, 1000)
    rows = await claim_and_queue(fair_db.relay, 200, SMALL_PICKS)
    assert 90 <= batches_of(rows)[back] <= 110


async def test_weight_gives_a_larger_share(fair_db: FairDb) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    heavy = await add_pending_batch(fair_db.owner, a, 2000)
    light = await add_pending_batch(fair_db.owner, b, 2000)
    await fair_db.owner.execute(
        "INSERT INTO tenant_limits (tenant_id, dispatch_weight) VALUES ($1, 3)", a
    )
    counts: Counter[uuid.UUID] = Counter()
    for _ in range(4):
        counts += batches_of(await claim_and_queue(fair_db.relay, 200, SMALL_PICKS))
    assert 560 <= counts[heavy] <= 640
    assert 160 <= counts[light] <= 240


async def test_in_flight_caps(fair_db: FairDb) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    a1 = await add_pending_batch(fair_db.owner, a, 1000)
    a2 = await add_pending_batch(fair_db.owner, a, 1000)
    b1 = await add_pending_batch(fair_db.owner, b, 1000)
    capped = DispatchLimits(tenant_in_flight=150, batch_in_flight=100, quantum=25)
    counts = batches_of(await claim_and_queue(fair_db.relay, 1000, capped))
    assert counts[a1] + counts[a2] == 150  # tenant cap
    assert counts[a1] <= 100 and counts[a2] <= 100
    assert counts[b1] == 100  # batch cap
    assert await claim_and_queue(fair_db.relay, 1000, capped) == []
    assert await fair_db.relay.fetchval("SELECT dispatchable_backlog(NULL, NULL)") == 3000 - 250

    overall = DispatchLimits(max_in_flight=260, quantum=25)
    assert len(await claim_and_queue(fair_db.relay, 1000, overall)) == 10
    assert await claim_and_queue(fair_db.relay, 1000, overall) == []

    # Workers finish 50 of B's: they are B's to take again, A stays at its cap.
    await finish(fair_db.owner, b1, 50)
    rows = await claim_and_queue(fair_db.relay, 1000, capped)
    # (the 10 above went to A or B: B's batch had 40 to 50 slots free)
    assert set(batches_of(rows)) == {b1}
    assert 40 <= len(rows) <= 50
    queued = {
        r["batch_id"]: r["n"]
        for r in await fair_db.owner.fetch(
            "SELECT batch_id, count(*) AS n FROM records WHERE state = 'QUEUED'"
            " AND batch_id = ANY($1::uuid[]) GROUP BY batch_id",
            [a1, a2, b1],
        )
    }
    assert all(n <= 100 for n in queued.values())
    assert queued.get(a1, 0) + queued.get(a2, 0) <= 150 + 10


async def test_cancelled_batches_are_never_claimed(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    live = await add_pending_batch(fair_db.owner, tenant, 30)
    gone = await add_pending_batch(fair_db.owner, tenant, 30)
    await fair_db.owner.execute(
        "UPDATE batches SET state = 'CANCELLED', cancelled_at = now() WHERE id = $1", gone
    )
    rows = await claim_and_queue(fair_db.relay, 1000, SMALL_PICKS)
    assert batches_of(rows) == {live: 30}
    keys = "SELECT count(*) FROM dispatch_batches WHERE batch_id = $1"
    assert await fair_db.owner.fetchval(keys, gone) == 0


async def test_retry_makes_records_pending_again(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    batch = await add_pending_batch(fair_db.owner, tenant, 40)
    assert len(await claim_and_queue(fair_db.relay, 1000)) == 40
    assert await claim_and_queue(fair_db.relay, 1000) == []  # its key is gone
    await fair_db.owner.execute(
        "UPDATE records SET state = 'FAILED' WHERE batch_id = $1 AND row_number <= 15", batch
    )
    # RetryFailedRecords' statement: one UPDATE of 15 rows touches the key once.
    await fair_db.owner.execute(
        "UPDATE records SET state = 'PENDING' WHERE batch_id = $1 AND state = 'FAILED'", batch
    )
    pending = "SELECT pending FROM dispatch_batches WHERE batch_id = $1"
    assert await fair_db.owner.fetchval(pending, batch) == 15
    rows = await claim_and_queue(fair_db.relay, 1000)
    assert batches_of(rows) == {batch: 15}


async def test_concurrent_claims_never_share_a_record(fair_db: FairDb) -> None:
    tenants = [uuid.uuid4() for _ in range(12)]
    for tenant in tenants:
        await add_pending_batch(fair_db.owner, tenant, 150)
        await add_pending_batch(fair_db.owner, tenant, 100)
    seen: Counter[uuid.UUID] = Counter()

    # A window holds its tenants' keys until it commits (10 picks of 10 here): a second
    # relay meanwhile serves the other tenants, never the same records.
    async with (
        fair_db.relay.acquire() as c1,
        fair_db.relay.acquire() as c2,
        c1.transaction(),
        c2.transaction(),
    ):
        one = await claim(c1, 100, SMALL_PICKS)
        two = await claim(c2, 100, SMALL_PICKS)
        assert len(one) == 100 and two
        assert not {r["record_id"] for r in one} & {r["record_id"] for r in two}
        assert not {r["tenant_id"] for r in one} & {r["tenant_id"] for r in two}

    async def relay() -> None:
        while rows := await claim_and_queue(fair_db.relay, 97, SMALL_PICKS):
            seen.update(r["record_id"] for r in rows)
            await asyncio.sleep(0)

    await asyncio.gather(relay(), relay(), relay())
    assert len(seen) == 3000
    assert set(seen.values()) == {1}


async def test_a_tenant_held_back_comes_back_level_with_one_that_went_on(
    fair_db: FairDb,
) -> None:
    # B's four batches fill their in-flight cap and stay there (its workers are stuck) while
    # A's records keep finishing: A is served alone, and every claim ends with both at a cap.
    a, b = uuid.uuid4(), uuid.uuid4()
    alone = await add_pending_batch(fair_db.owner, a, 2000)
    held = [await add_pending_batch(fair_db.owner, b, 2000) for _ in range(4)]
    capped = DispatchLimits(batch_in_flight=50, quantum=10)
    for _ in range(8):
        rows = await claim_and_queue(fair_db.relay, 100, capped)
        await finish(fair_db.owner, alone)
    assert set(batches_of(rows)) == {alone}  # B held back at its cap
    for batch in held:
        await finish(fair_db.owner, batch)
    # B comes back level with A, not where A was when B stopped: it gets no burst for the
    # rounds it sat out, and A goes on getting its share from the first claim.
    rows = await claim_and_queue(fair_db.relay, 100, capped)
    assert batches_of(rows)[alone] >= 40
