"""The outbox relay's SECURITY DEFINER functions, called as the application role."""

from __future__ import annotations

import uuid

import asyncpg

from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def pending_batch(
    app_pool: asyncpg.Pool, tenant: uuid.UUID, records: int, state: str = "QUEUED"
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        batch = await insert_batch(
            conn,
            tenant,
            creator="system:worker",
            states=["PENDING"] * records,
            batch_state=state,
            traceparent=TRACEPARENT,
        )
    return batch.batch_id, batch.record_ids


async def test_claim_lock_and_mark_queued(app_pool: asyncpg.Pool) -> None:
    t1, t2 = uuid.uuid4(), uuid.uuid4()
    b1, r1 = await pending_batch(app_pool, t1, 3)
    _, r2 = await pending_batch(app_pool, t2, 2)
    cancelled, r3 = await pending_batch(app_pool, t2, 2, state="CANCELLED")
    mine = set(r1) | set(r2) | set(r3)

    async with app_pool.acquire() as relay, app_pool.acquire() as other:
        tx = relay.transaction()
        await tx.start()
        claimed = [
            r
            for r in await relay.fetch("SELECT * FROM outbox_claim(100000)")
            if r["record_id"] in mine
        ]
        # Both tenants, no record of the cancelled batch, in row order within a batch.
        assert {r["record_id"] for r in claimed} == set(r1) | set(r2)
        assert [r["record_id"] for r in claimed if r["batch_id"] == b1] == r1
        for row in claimed:
            assert row["tenant_id"] == (t1 if row["batch_id"] == b1 else t2)
            assert row["attempt"] == 0
            assert row["traceparent"] == TRACEPARENT

        # A second relay skips the locked rows instead of waiting for them.
        async with other.transaction():
            again = await other.fetch("SELECT * FROM outbox_claim(100000)")
            assert not {r["record_id"] for r in again} & mine
        assert await other.fetch("SELECT * FROM outbox_claim(0)") == []

        marked = await relay.fetchval(
            "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])",
            [r["tenant_id"] for r in claimed],
            [r["record_id"] for r in claimed],
        )
        assert marked == 5
        await tx.commit()

        # Marking twice changes nothing; queued records are no longer claimed.
        async with relay.transaction():
            assert (
                await relay.fetchval(
                    "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])",
                    [r["tenant_id"] for r in claimed],
                    [r["record_id"] for r in claimed],
                )
                == 0
            )
            again = await relay.fetch("SELECT * FROM outbox_claim(100000)")
            assert not {r["record_id"] for r in again} & mine

        # Outside the functions, the relay's connection sees no tenant's rows.
        assert await relay.fetchval("SELECT count(*) FROM records") == 0

    async with tenant_transaction(app_pool, service_scope(t1), readonly=True) as conn:
        rows = await conn.fetch("SELECT state, queued_at FROM records WHERE batch_id = $1", b1)
        assert {r["state"] for r in rows} == {"QUEUED"}
        assert all(r["queued_at"] is not None for r in rows)
    async with tenant_transaction(app_pool, service_scope(t2), readonly=True) as conn:
        states = await conn.fetch("SELECT state FROM records WHERE batch_id = $1", cancelled)
        assert {r["state"] for r in states} == {"PENDING"}


async def test_rolled_back_claim_releases_rows(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    _, ids = await pending_batch(app_pool, tenant, 2)
    for _ in range(2):  # the second round sees them again: nothing was marked
        async with app_pool.acquire() as relay:
            tx = relay.transaction()
            await tx.start()
            claimed = {
                r["record_id"] for r in await relay.fetch("SELECT * FROM outbox_claim(100000)")
            }
            assert set(ids) <= claimed
            await tx.rollback()
    async with app_pool.acquire() as relay, relay.transaction():
        await relay.fetchval(
            "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])", [tenant] * len(ids), ids
        )
