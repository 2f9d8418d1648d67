"""Fixtures for relay tests: a batch whose records wait in the outbox (PENDING)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.database import create_batch, create_schema

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass(frozen=True)
class PendingBatch:
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    record_ids: list[uuid.UUID]
    traceparent: str


MakePending = Callable[[int], Awaitable[PendingBatch]]


@pytest.fixture
def make_pending(app_pool: asyncpg.Pool) -> MakePending:
    """`await make_pending(n)`: a fresh tenant's batch with n PENDING records."""

    async def make(count: int) -> PendingBatch:
        tenant = uuid.uuid4()
        scope = service_scope(tenant)
        async with tenant_transaction(app_pool, scope) as conn:
            schema_id = await create_schema(conn, tenant)
            batch_id, record_ids = await create_batch(
                conn,
                tenant,
                schema_id,
                creator=scope.user_id,
                records=count,
                record_state="PENDING",
            )
            await conn.execute(
                "UPDATE batches SET traceparent = $2 WHERE id = $1", batch_id, TRACEPARENT
            )
        return PendingBatch(tenant, batch_id, record_ids, TRACEPARENT)

    return make


async def record_states(pool: asyncpg.Pool, batch: PendingBatch) -> dict[str, int]:
    """Count of the batch's records per state."""
    async with tenant_transaction(pool, service_scope(batch.tenant_id), readonly=True) as conn:
        rows = await conn.fetch(
            "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state",
            batch.batch_id,
        )
    return {row["state"]: row["count"] for row in rows}
