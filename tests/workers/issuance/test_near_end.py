"""The outcome transaction's near-end check: a batch is nearly finished when fewer than the
bound of its records are still to finish (QUEUED or ISSUED), and never while one is PENDING."""

from __future__ import annotations

import asyncpg

from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch
from workers.issuance.outcome_repository import nearly_finished


async def test_open_records_of_both_states_count_against_the_bound(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    # Three QUEUED and two ISSUED records are open; the INVITED and FAILED ones are done.
    open_ = await insert_batch(
        owner_pool, states=["QUEUED"] * 3 + ["ISSUED"] * 2 + ["INVITED"] * 4 + ["FAILED"]
    )
    done = await insert_batch(owner_pool, open_.tenant_id, states=["INVITED", "CANCELLED"])
    waiting = await insert_batch(owner_pool, open_.tenant_id, states=["PENDING", "INVITED"])
    batches = [open_.batch_id, done.batch_id, waiting.batch_id]
    async with tenant_transaction(app_pool, service_scope(open_.tenant_id)) as conn:
        # Five open: below a bound of 6, not below 5 (nor 3: the QUEUED alone reach it).
        assert await nearly_finished(conn, open_.tenant_id, batches, 6) == {
            open_.batch_id,
            done.batch_id,
        }
        assert await nearly_finished(conn, open_.tenant_id, batches, 5) == {done.batch_id}
        assert await nearly_finished(conn, open_.tenant_id, batches, 3) == {done.batch_id}
        # A PENDING record keeps its batch far from the end, whatever the bound.
        assert waiting.batch_id not in await nearly_finished(conn, open_.tenant_id, batches, 1_000)
