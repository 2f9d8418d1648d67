"""The batch repository against the real database, as the application role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from credbatch.batches import commands, repository
from credbatch.batches.model import (
    BatchFilter,
    BatchState,
    PagePosition,
    RecordCounts,
    TimeBound,
)
from credbatch.tenancy import TenantScope, tenant_transaction
from tests.fixtures.batches import insert_batch, insert_schema


def admin(tenant: uuid.UUID) -> TenantScope:
    return TenantScope(tenant, "admin", frozenset({"org_admin"}), ("default",))


async def test_get_batch_counts_every_state(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    states = ["PENDING", "QUEUED", "QUEUED", "ISSUED", "INVITED", "INVITED", "FAILED", "CLAIMED"]
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=states)
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        view = await repository.get_batch(conn, arranged.batch_id)
    assert view is not None
    assert view.counts == RecordCounts(
        pending=1, queued=2, issued=1, invited=2, failed=1, cancelled=0, claimed=1
    )
    assert view.total == 8
    assert view.state is BatchState.IN_PROGRESS
    assert view.percent_done == 50.0
    assert view.complete_time is None
    assert view.creator == "ana"
    assert view.mediums == ("EMAIL", "SMS")
    assert view.schema_id == schema


async def test_estimate_follows_recent_completions(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    old = datetime.now(UTC) - timedelta(minutes=10)
    arranged = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        states=["INVITED"] * 30 + ["QUEUED"] * 30,
        created_at=old,
    )
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        view = await repository.get_batch(conn, arranged.batch_id)
    assert view is not None
    # 30 completions within the last 60 s: 0.5 records/s, 30 left → about a minute.
    assert abs(view.recent_rate - 0.5) < 0.01
    assert view.estimated_complete_time is not None
    left = (view.estimated_complete_time - datetime.now(UTC)).total_seconds()
    assert 50 < left < 61


async def test_estimate_counts_failures_and_a_batch_with_none_finished_has_none(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    # The estimate is skipped for a running batch with no record INVITED, CLAIMED or FAILED
    # (there is no recent completion to read); a FAILED record alone must still count.
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    old = datetime.now(UTC) - timedelta(minutes=10)
    failing = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        states=["FAILED"] * 30 + ["QUEUED"] * 30,
        created_at=old,
    )
    fresh = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["PENDING", "QUEUED"], created_at=old
    )
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        failing_view = await repository.get_batch(conn, failing.batch_id)
        fresh_view = await repository.get_batch(conn, fresh.batch_id)
    assert failing_view is not None and fresh_view is not None
    assert abs(failing_view.recent_rate - 0.5) < 0.01
    assert failing_view.estimated_complete_time is not None
    assert fresh_view.state in (BatchState.QUEUED, BatchState.IN_PROGRESS)
    assert fresh_view.estimated_complete_time is None
    assert fresh_view.recent_rate == 0.0


async def test_completed_batch_has_complete_time_and_no_estimate(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["INVITED", "FAILED"]
    )
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        view = await repository.get_batch(conn, arranged.batch_id)
    assert view is not None
    assert view.state is BatchState.COMPLETED_WITH_ERRORS
    assert view.complete_time is not None
    assert view.estimated_complete_time is None


async def test_invisible_batch_is_none(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    await insert_schema(owner_pool, other)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana")
    async with tenant_transaction(app_pool, admin(other)) as conn:
        assert await repository.get_batch(conn, arranged.batch_id) is None
    issuer = TenantScope(tenant, "bob", frozenset({"issuer"}), ("default",))
    async with tenant_transaction(app_pool, issuer) as conn:
        assert await repository.get_batch(conn, arranged.batch_id) is None


async def test_list_filters_and_pages(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    base = datetime(2024, 5, 1, tzinfo=UTC)
    made = [
        await insert_batch(
            owner_pool,
            tenant,
            schema,
            creator="ana" if i % 2 else "bob",
            created_at=base + timedelta(minutes=i),
        )
        for i in range(7)
    ]
    newest_first = [m.batch_id for m in reversed(made)]
    seen: list[uuid.UUID] = []
    after: PagePosition | None = None
    while True:
        async with tenant_transaction(app_pool, admin(tenant)) as conn:
            page = await repository.list_batches(conn, BatchFilter(), after, 3)
        seen += [v.id for v in page]
        if len(page) < 3:
            break
        after = PagePosition(page[-1].create_time, page[-1].id)
    assert seen == newest_first
    only_ana = BatchFilter(
        creators=("ana",), create_time=(TimeBound(">=", base + timedelta(minutes=3)),)
    )
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        page = await repository.list_batches(conn, only_ana, None, 50)
    assert [v.id for v in page] == [made[5].batch_id, made[3].batch_id]


async def test_cancel_and_retry(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        states=["FAILED", "INVITED", "FAILED"],
        errors=[("X", "x")] * 3,
    )
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        assert await commands.retry_failed(conn, arranged.batch_id) == 2
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        assert await commands.retry_failed(conn, arranged.batch_id) == 0
        view = await repository.get_batch(conn, arranged.batch_id)
        rows = await conn.fetch(
            "SELECT state, attempt, error_code FROM records WHERE batch_id = $1 AND state <> "
            "'INVITED'",
            arranged.batch_id,
        )
    assert view is not None and view.state is BatchState.IN_PROGRESS
    assert {tuple(r) for r in rows} == {("PENDING", 0, None)}
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        assert await commands.mark_cancelled(conn, arranged.batch_id)
        assert await commands.cancel_open_records(conn, arranged.batch_id) == 2
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        assert not await commands.mark_cancelled(conn, arranged.batch_id)
        assert await commands.cancel_open_records(conn, arranged.batch_id) == 0
        view = await repository.get_batch(conn, arranged.batch_id)
        stored = await conn.fetchval("SELECT state FROM batches WHERE id = $1", arranged.batch_id)
    assert view is not None and view.state is BatchState.CANCELLED
    assert view.counts == RecordCounts(invited=1, cancelled=2)
    assert stored == "CANCELLED"
