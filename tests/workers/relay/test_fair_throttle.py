"""A provider's throttle holds the tenant's batches using that channel back at the claim."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.dispatch import FairDb, add_pending_batch, claim_and_queue, drain


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_slate(fair_db: FairDb) -> AsyncIterator[None]:
    await drain(fair_db.relay)
    yield


async def throttle(pool: asyncpg.Pool, tenant: uuid.UUID, medium: str, seconds: float) -> None:
    async with tenant_transaction(pool, service_scope(tenant)) as conn:
        await conn.execute("SELECT dispatch_throttle($1, $2)", medium, seconds)


async def test_a_throttled_channel_waits_and_the_rest_goes_on(fair_db: FairDb) -> None:
    throttled, other = uuid.uuid4(), uuid.uuid4()
    sms = await add_pending_batch(fair_db.owner, throttled, 30, mediums=("SMS",))
    email = await add_pending_batch(fair_db.owner, throttled, 30, mediums=("EMAIL",))
    both = await add_pending_batch(fair_db.owner, throttled, 30, mediums=("EMAIL", "SMS"))
    others = await add_pending_batch(fair_db.owner, other, 30, mediums=("SMS",))
    await throttle(fair_db.app, throttled, "SMS", 60)

    claimed = [r["batch_id"] for r in await claim_and_queue(fair_db.relay, 1000)]
    assert sorted(map(str, set(claimed))) == sorted(map(str, {email, others}))
    assert len(claimed) == 60
    # Nothing to dispatch now: the relay goes back to its idle pace, not a busy poll.
    backlog = await fair_db.relay.fetchval("SELECT dispatchable_backlog(NULL, NULL)")
    assert backlog == 0

    # Once the provider's delay has passed, the held batches go.
    await fair_db.owner.execute(
        "UPDATE dispatch_tenants SET sms_throttled_until = now() - interval '1 second'"
        " WHERE tenant_id = $1",
        throttled,
    )
    claimed = [r["batch_id"] for r in await claim_and_queue(fair_db.relay, 1000)]
    assert sorted(map(str, set(claimed))) == sorted(map(str, {sms, both}))
    assert len(claimed) == 60


async def test_a_throttle_only_ever_extends(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    await add_pending_batch(fair_db.owner, tenant, 5, mediums=("EMAIL",))
    await throttle(fair_db.app, tenant, "EMAIL", 120)
    await throttle(fair_db.app, tenant, "EMAIL", 1)
    left = await fair_db.owner.fetchval(
        "SELECT extract(epoch FROM email_throttled_until - now()) FROM dispatch_tenants"
        " WHERE tenant_id = $1",
        tenant,
    )
    assert 100 < left <= 120
    assert await claim_and_queue(fair_db.relay, 100) == []


@pytest.mark.parametrize(("medium", "seconds"), [("FAX", 5.0), ("SMS", 0.0), ("SMS", -1.0)])
async def test_a_throttle_needs_a_channel_and_a_delay(
    fair_db: FairDb, medium: str, seconds: float
) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await throttle(fair_db.app, uuid.uuid4(), medium, seconds)


async def test_a_throttle_needs_a_tenant_transaction(fair_db: FairDb) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await fair_db.app.execute("SELECT dispatch_throttle('SMS', 5)")
