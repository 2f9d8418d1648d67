"""The webhook claim belongs to the dispatchers' role alone.

webhook_deliveries_claim leases due deliveries of every tenant outside RLS, so an
application-role session (any request handler of any service) must not reach it; the
dispatchers run it as their own role, which sees no table.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import APP_ROLE, WEBHOOKS_ROLE, Settings
from credbatch.db.pool import create_pool
from credbatch.tenancy import service_scope, tenant_transaction
from tests.workers.webhooks.events import finish_batch

CLAIM_FN = "webhook_deliveries_claim(integer,integer,double precision)"
CLAIM = "SELECT tenant_id, delivery_id FROM webhook_deliveries_claim(1000, 1000, 60)"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def webhooks_pool(db_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_settings.webhooks_database_url, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def due_delivery(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> AsyncIterator[tuple[uuid.UUID, uuid.UUID]]:
    """A fresh tenant with one PENDING delivery due now: (tenant, delivery id)."""
    scope = service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, scope) as conn:
        await conn.execute(
            "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types)"
            " VALUES (app_tenant(), $1, 'http://127.0.0.1:9/hook', ARRAY['batch.completed'])",
            uuid.uuid4(),
        )
    await finish_batch(owner_pool, app_pool, scope.tenant_id)
    delivery = await owner_pool.fetchval(
        "SELECT id FROM webhook_deliveries WHERE tenant_id = $1", scope.tenant_id
    )
    assert delivery is not None
    yield scope.tenant_id, delivery
    await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", scope.tenant_id)


async def test_webhooks_role_is_a_plain_login_role_that_owns_nothing(
    owner_pool: asyncpg.Pool,
) -> None:
    role = await owner_pool.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", WEBHOOKS_ROLE)
    assert role is not None
    assert role["rolcanlogin"]
    for attribute in ("rolsuper", "rolbypassrls", "rolcreatedb", "rolcreaterole"):
        assert not role[attribute], attribute
    owned = await owner_pool.fetchval(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = $1::regrole)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole)",
        WEBHOOKS_ROLE,
    )
    assert owned == 0
    for a, b in ((APP_ROLE, WEBHOOKS_ROLE), (WEBHOOKS_ROLE, APP_ROLE)):
        assert not await owner_pool.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", a, b)


async def test_only_the_webhooks_role_may_run_the_claim(owner_pool: asyncpg.Pool) -> None:
    for role, allowed in ((WEBHOOKS_ROLE, True), (APP_ROLE, False), ("public", False)):
        granted = await owner_pool.fetchval(
            "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, CLAIM_FN
        )
        assert granted is allowed, role


async def test_the_application_role_is_refused_the_claim(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    due_delivery: tuple[uuid.UUID, uuid.UUID],
) -> None:
    tenant, delivery = due_delivery
    # Not even inside the tenant's own scope, for its own deliveries.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await conn.fetch(CLAIM)
    attempts = await owner_pool.fetchval(
        "SELECT attempts FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2",
        tenant,
        delivery,
    )
    assert attempts == 0


async def test_the_webhooks_role_claims_deliveries_of_any_tenant(
    webhooks_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    due_delivery: tuple[uuid.UUID, uuid.UUID],
) -> None:
    tenant, delivery = due_delivery
    assert await webhooks_pool.fetchval("SELECT current_user") == WEBHOOKS_ROLE
    claimed = {(r["tenant_id"], r["delivery_id"]) for r in await webhooks_pool.fetch(CLAIM)}
    assert (tenant, delivery) in claimed
    row = await owner_pool.fetchrow(
        "SELECT attempts, leased_until > now() AS leased FROM webhook_deliveries"
        " WHERE tenant_id = $1 AND id = $2",
        tenant,
        delivery,
    )
    assert row["attempts"] == 1 and row["leased"]


@pytest.mark.parametrize(
    "table", ["webhook_endpoints", "webhook_secrets", "webhook_events", "webhook_deliveries"]
)
async def test_the_webhooks_role_sees_no_table(webhooks_pool: asyncpg.Pool, table: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await webhooks_pool.fetch(f"SELECT 1 FROM {table} LIMIT 1")
