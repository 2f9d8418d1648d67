"""An upload that fails while a group of records is still being inserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from credbatch.errors import ResourceExhausted
from credbatch.schema.model import Medium
from credbatch.tenancy import TenantScope
from services.uploads.model import UploadRequest
from services.uploads.repository import GROUP_ROWS
from services.uploads.uploader import Uploader
from tests.fixtures.uploads import Tenant, batch_count, csv_file, row


async def test_limit_hit_while_an_insert_is_in_flight_reports_the_limit_and_frees_the_connection(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    settings = tenant.settings.with_overrides(max_rows=GROUP_ROWS + 1)
    uploader = Uploader(settings, app_pool)
    caller = TenantScope(tenant.tenant_id, tenant.user, frozenset(tenant.roles), ("sales",))
    request = UploadRequest(tenant.schema, (Medium.EMAIL, Medium.SMS), department="sales")
    first = csv_file([row(i) for i in range(GROUP_ROWS)])
    rest = csv_file([row(GROUP_ROWS + i) for i in range(2)], header="")[2:]

    async def chunks() -> AsyncIterator[bytes]:
        yield first  # a whole group: its INSERT starts and blocks on the lock below
        await asyncio.sleep(0.3)
        yield rest  # over max_rows while that INSERT is still running

    async with owner_pool.acquire() as lock, lock.transaction():
        await lock.execute("LOCK TABLE records IN SHARE MODE")
        with pytest.raises(ResourceExhausted):
            await asyncio.wait_for(uploader.upload(caller, request, chunks()), 10)
    assert await batch_count(owner_pool, tenant.tenant_id) == 0
    # Every pooled connection is usable afterwards (none left mid-statement).
    async with app_pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
