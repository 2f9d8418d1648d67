"""A retried upload (same request_id) returns the same batch and stores nothing twice."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from tests.fixtures.uploads import Tenant, batch_count, batch_rows, csv_file, row


async def test_retry_returns_the_same_batch(tenant: Tenant, owner_pool: asyncpg.Pool) -> None:
    content = csv_file([row(i) for i in range(50)])
    first = await tenant.upload(content, request_id="req-1")
    again = await tenant.upload(content, request_id="req-1")
    assert again.batch.name == first.batch.name
    assert again.report.valid and again.report.rows_total == 50
    assert await batch_count(owner_pool, tenant.tenant_id) == 1
    assert len(await batch_rows(owner_pool, tenant.tenant_id)) == 50


async def test_concurrent_retries_create_one_batch(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    content = csv_file([row(i) for i in range(3000)])
    responses = await asyncio.gather(
        *(tenant.upload(content, request_id="req-2", chunk=4096) for _ in range(3))
    )
    assert len({r.batch.name for r in responses}) == 1
    assert await batch_count(owner_pool, tenant.tenant_id) == 1
    assert len(await batch_rows(owner_pool, tenant.tenant_id)) == 3000


async def test_an_invalid_upload_does_not_use_up_its_request_id(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await tenant.upload(csv_file([row(1, age="x")]), request_id="req-3")
    response = await tenant.upload(csv_file([row(1)]), request_id="req-3")
    assert response.batch.total_records == 1
    assert await batch_count(owner_pool, tenant.tenant_id) == 1
