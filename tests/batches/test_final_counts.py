"""Stored counts of finished batches (migration 0401, batches_final_counts trigger).

The state transitions run as the application role under the scope that runs them in
production (the worker's service scope, the creating issuer, org_admin), through the real
statements: the issuance worker's COMPLETE_BATCHES and the repository's retry and cancel.
The owner only arranges data and inspects the column.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from credbatch.batches import repository
from credbatch.batches.model import BatchFilter, BatchState, BatchView, RecordCounts
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from tests.fixtures.batches import ArrangedBatch, insert_batch, record_states
from workers.issuance.repository import COMPLETE_BATCHES


def admin(tenant: uuid.UUID) -> TenantScope:
    return TenantScope(tenant, "root", frozenset({"org_admin"}), ())


def issuer(tenant: uuid.UUID, sub: str = "ana") -> TenantScope:
    return TenantScope(tenant, sub, frozenset({"issuer"}), ("sales",))


async def stored(owner: asyncpg.Pool, batch_id: uuid.UUID) -> Any:
    return await owner.fetchval("SELECT final_counts FROM batches WHERE id = $1", batch_id)


async def set_record(
    pool: asyncpg.Pool, scope: TenantScope, arranged: ArrangedBatch, row: int, state: str
) -> None:
    async with tenant_transaction(pool, scope) as conn:
        await conn.execute(
            "UPDATE records SET state = $3, updated_at = now()"
            " WHERE tenant_id = app_tenant() AND batch_id = $1 AND row_number = $2",
            arranged.batch_id,
            row,
            state,
        )


async def complete(pool: asyncpg.Pool, scope: TenantScope, arranged: ArrangedBatch) -> str:
    """The issuance worker's completion statement, as ``scope``; its command tag."""
    async with tenant_transaction(pool, scope) as conn:
        tag: str = await conn.execute(COMPLETE_BATCHES, arranged.tenant_id, [arranged.batch_id])
        return tag


async def read_views(
    pool: asyncpg.Pool, scope: TenantScope, batch_id: uuid.UUID
) -> tuple[BatchView | None, BatchView | None]:
    """GetBatch's and ListBatches' view of the batch."""
    async with tenant_transaction(pool, scope, readonly=True) as conn:
        got = await repository.get_batch(conn, batch_id)
        listed = await repository.list_batches(conn, BatchFilter(), None, 1000)
    return got, next((v for v in listed if v.id == batch_id), None)


async def arrange(owner: asyncpg.Pool, states: list[str], creator: str = "ana") -> ArrangedBatch:
    return await insert_batch(
        owner,
        creator=creator,
        department="sales",
        states=states,
        batch_state="IN_PROGRESS",
    )


@pytest.mark.parametrize("who", ["service", "org_admin", "creator"])
async def test_completion_stores_the_live_counts(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, who: str
) -> None:
    arranged = await arrange(owner_pool, ["INVITED"] * 3 + ["FAILED"] * 2 + ["ISSUED"])
    scope = {
        "service": service_scope(arranged.tenant_id),
        "org_admin": admin(arranged.tenant_id),
        "creator": issuer(arranged.tenant_id),
    }[who]
    # One record still ISSUED: the worker's statement leaves the batch alone, nothing stored.
    assert await complete(app_pool, scope, arranged) == "UPDATE 0"
    assert await stored(owner_pool, arranged.batch_id) is None

    await set_record(app_pool, scope, arranged, 6, "INVITED")
    assert await complete(app_pool, scope, arranged) == "UPDATE 1"

    final = await stored(owner_pool, arranged.batch_id)
    assert final == {"INVITED": 4, "FAILED": 2}
    assert final == await record_states(owner_pool, arranged.batch_id)
    state = await owner_pool.fetchval("SELECT state FROM batches WHERE id = $1", arranged.batch_id)
    assert state == "COMPLETED_WITH_ERRORS"


async def test_readers_give_the_same_batch_stored_or_live(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    arranged = await arrange(owner_pool, ["INVITED"] * 5 + ["FAILED", "CANCELLED", "QUEUED"])
    svc = service_scope(arranged.tenant_id)
    await set_record(app_pool, svc, arranged, 8, "INVITED")
    assert await complete(app_pool, svc, arranged) == "UPDATE 1"
    assert await stored(owner_pool, arranged.batch_id) is not None

    with_stored = await read_views(app_pool, admin(arranged.tenant_id), arranged.batch_id)
    # Drop the stored counts without a state change (the trigger does not fire): the readers
    # then count live, and must describe the batch identically.
    await owner_pool.execute(
        "UPDATE batches SET final_counts = NULL WHERE id = $1", arranged.batch_id
    )
    live = await read_views(app_pool, admin(arranged.tenant_id), arranged.batch_id)

    for view in (*with_stored, *live):
        assert view is not None
        assert view.counts == RecordCounts(invited=6, failed=1, cancelled=1)
        assert view.state is BatchState.COMPLETED_WITH_ERRORS
        assert view.percent_done == 100.0
    assert with_stored == live
    got, listed = with_stored
    assert got is not None and listed is not None
    assert (got.update_time, got.complete_time) == (listed.update_time, listed.complete_time)


async def test_readers_use_the_stored_counts(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    """GetBatch and ListBatches take a finished batch's counts from final_counts, not records."""
    arranged = await arrange(owner_pool, ["INVITED"] * 4)
    svc = service_scope(arranged.tenant_id)
    assert await complete(app_pool, svc, arranged) == "UPDATE 1"
    # A value no live count could give (4 records): proves the stored path is the one read.
    await owner_pool.execute(
        """UPDATE batches SET final_counts = '{"INVITED": 3, "CLAIMED": 1}' WHERE id = $1""",
        arranged.batch_id,
    )
    for view in await read_views(app_pool, svc, arranged.batch_id):
        assert view is not None
        assert view.counts == RecordCounts(invited=3, claimed=1)


async def test_retry_clears_and_the_next_completion_stores_again(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    arranged = await arrange(owner_pool, ["INVITED", "INVITED", "FAILED"])
    svc = service_scope(arranged.tenant_id)
    await complete(app_pool, svc, arranged)
    assert await stored(owner_pool, arranged.batch_id) == {"INVITED": 2, "FAILED": 1}

    async with tenant_transaction(app_pool, issuer(arranged.tenant_id)) as conn:
        assert await repository.retry_failed(conn, arranged.batch_id) == 1
    assert await stored(owner_pool, arranged.batch_id) is None
    got, listed = await read_views(app_pool, svc, arranged.batch_id)
    for view in (got, listed):
        assert view is not None
        assert view.state is BatchState.IN_PROGRESS
        assert view.counts == RecordCounts(pending=1, invited=2)

    await set_record(app_pool, svc, arranged, 3, "INVITED")
    assert await complete(app_pool, svc, arranged) == "UPDATE 1"
    assert await stored(owner_pool, arranged.batch_id) == {"INVITED": 3}
    got, _ = await read_views(app_pool, svc, arranged.batch_id)
    assert got is not None and got.state is BatchState.COMPLETED
    assert got.counts == RecordCounts(invited=3)


async def test_cancelled_batch_keeps_counting_live(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    arranged = await arrange(owner_pool, ["INVITED", "ISSUED", "QUEUED", "PENDING"])
    svc = service_scope(arranged.tenant_id)
    async with tenant_transaction(app_pool, admin(arranged.tenant_id)) as conn:
        assert await repository.cancel_batch(conn, arranged.batch_id) == 2
    assert await stored(owner_pool, arranged.batch_id) is None
    # The issued record's invitation still goes out after the cancel: the counts follow.
    await set_record(app_pool, svc, arranged, 2, "INVITED")
    got, listed = await read_views(app_pool, svc, arranged.batch_id)
    for view in (got, listed):
        assert view is not None
        assert view.state is BatchState.CANCELLED
        assert view.counts == RecordCounts(invited=2, cancelled=2)
    assert await stored(owner_pool, arranged.batch_id) is None


async def test_any_other_state_clears_the_stored_counts(owner_pool: asyncpg.Pool) -> None:
    arranged = await arrange(owner_pool, ["INVITED"])
    await owner_pool.execute(
        "UPDATE batches SET state = 'COMPLETED' WHERE id = $1", arranged.batch_id
    )
    assert await stored(owner_pool, arranged.batch_id) == {"INVITED": 1}
    await owner_pool.execute("UPDATE batches SET state = 'FAILED' WHERE id = $1", arranged.batch_id)
    assert await stored(owner_pool, arranged.batch_id) is None


async def test_stored_counts_stay_in_their_tenant(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    arranged = await arrange(owner_pool, ["INVITED", "FAILED"])
    await complete(app_pool, service_scope(arranged.tenant_id), arranged)
    assert await stored(owner_pool, arranged.batch_id) == {"INVITED": 1, "FAILED": 1}

    other = uuid.uuid4()
    outsiders = [
        service_scope(other),
        admin(other),
        # Same tenant, but neither the creator nor an observer of its department.
        TenantScope(arranged.tenant_id, "bob", frozenset({"issuer"}), ("sales",)),
        TenantScope(arranged.tenant_id, "olga", frozenset({"observer"}), ("hr",)),
    ]
    for scope in outsiders:
        got, listed = await read_views(app_pool, scope, arranged.batch_id)
        assert got is None and listed is None, scope
        async with tenant_transaction(app_pool, scope, readonly=True) as conn:
            seen = await conn.fetch(
                "SELECT final_counts FROM batches WHERE id = $1", arranged.batch_id
            )
        assert seen == [], scope
        # Nor can it write the batch's state (and so make the trigger count for it).
        async with tenant_transaction(app_pool, scope) as conn:
            tag = await conn.execute(
                "UPDATE batches SET state = 'COMPLETED' WHERE id = $1", arranged.batch_id
            )
        assert tag == "UPDATE 0", scope
    assert await stored(owner_pool, arranged.batch_id) == {"INVITED": 1, "FAILED": 1}


async def test_trigger_is_security_invoker_on_state_updates(owner_pool: asyncpg.Pool) -> None:
    row = await owner_pool.fetchrow(
        """
        SELECT p.prosecdef, t.tgenabled::text AS tgenabled, pg_get_triggerdef(t.oid) AS definition
        FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE t.tgrelid = 'batches'::regclass AND t.tgname = 'batches_final_counts'
        """
    )
    assert row is not None
    assert row["prosecdef"] is False
    assert row["tgenabled"] == "O"
    assert "BEFORE UPDATE OF state ON public.batches FOR EACH ROW" in row["definition"]
