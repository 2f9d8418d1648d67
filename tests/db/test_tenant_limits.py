"""tenant_limits (tenant-readable, owner-written) and the read-only monitoring role."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from credbatch.config import MONITOR_ROLE, Settings
from credbatch.tenancy import TenantScope, tenant_transaction


def admin(tenant_id: uuid.UUID) -> TenantScope:
    return TenantScope(tenant_id, "admin", frozenset({"org_admin"}), ("default",))


async def test_tenant_reads_only_its_own_limits_and_cannot_change_them(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    for tenant, rate in ((a, 10.0), (b, 20.0)):
        await owner_pool.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
        await owner_pool.execute(
            "INSERT INTO tenant_limits (tenant_id, emails_per_second) VALUES ($1, $2)", tenant, rate
        )
    async with tenant_transaction(app_pool, admin(a), readonly=True) as conn:
        rows = await conn.fetch("SELECT tenant_id, emails_per_second FROM tenant_limits")
        assert [(r["tenant_id"], r["emails_per_second"]) for r in rows] == [(a, 10.0)]
    for statement in (
        "UPDATE tenant_limits SET emails_per_second = 1000",
        "DELETE FROM tenant_limits",
        f"INSERT INTO tenant_limits (tenant_id) VALUES ('{uuid.uuid4()}')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(app_pool, admin(a)) as conn:
                await conn.execute(statement)


async def test_monitor_role_sees_the_backlog_and_nothing_else(db_settings: Settings) -> None:
    url = db_settings.app_database_url.replace("credbatch_app@", f"{MONITOR_ROLE}@", 1)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_user") == MONITOR_ROLE
        assert await conn.fetchval("SELECT dispatchable_backlog()") >= 0
        for statement in (
            "SELECT count(*) FROM records",
            "SELECT count(*) FROM dispatch_batches",
            "SELECT count(*) FROM tenant_limits",
            "SELECT * FROM outbox_claim(1)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(statement)
    finally:
        await conn.close()
