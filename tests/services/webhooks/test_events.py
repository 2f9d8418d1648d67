"""Events are written by the state change itself (an outbox): in its transaction, only for
subscribed tenants, thin, one delivery per subscribed enabled endpoint."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2 as pb
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch
from tests.workers.webhooks.events import create_endpoint, finish_batch

URL = "https://127.0.0.1:9/events"


async def _events(owner_pool: asyncpg.Pool, tenant: uuid.UUID) -> list[asyncpg.Record]:
    found: list[asyncpg.Record] = await owner_pool.fetch(
        "SELECT type, payload, (SELECT count(*) FROM webhook_deliveries d "
        "WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id) AS deliveries "
        "FROM webhook_events e WHERE tenant_id = $1 ORDER BY created_at",
        tenant,
    )
    return found


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


async def test_terminal_batch_states_raise_events_for_subscribers(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    tenant: uuid.UUID,
) -> None:
    await create_endpoint(
        hooks_stub,
        settings,
        tenant,
        URL,
        [pb.EVENT_TYPE_BATCH_CANCELLED, pb.EVENT_TYPE_BATCH_FAILED],
    )
    await create_endpoint(hooks_stub, settings, tenant, URL, [pb.EVENT_TYPE_BATCH_FAILED])
    try:
        await finish_batch(owner_pool, app_pool, tenant, "COMPLETED")  # nobody subscribed
        cancelled = await finish_batch(owner_pool, app_pool, tenant, "CANCELLED")
        await finish_batch(owner_pool, app_pool, tenant, "FAILED")
        found = await _events(owner_pool, tenant)
        assert [(e["type"], e["deliveries"]) for e in found] == [
            ("batch.cancelled", 1),
            ("batch.failed", 2),
        ]
        payload = found[0]["payload"]
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["batch"] == f"batches/{cancelled.batch_id}"
        assert payload["data"]["total_records"] == 2
        # A second UPDATE that leaves the state as it is raises nothing more.
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await conn.execute(
                "UPDATE batches SET updated_at = now() WHERE id = $1", cancelled.batch_id
            )
        assert len(await _events(owner_pool, tenant)) == 2
    finally:
        await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant)


async def test_a_rolled_back_change_raises_nothing(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    tenant: uuid.UUID,
) -> None:
    await create_endpoint(hooks_stub, settings, tenant, URL, [pb.EVENT_TYPE_BATCH_COMPLETED])
    try:
        batch = await insert_batch(owner_pool, tenant, batch_state="IN_PROGRESS")
        with pytest.raises(RuntimeError):
            async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
                await conn.execute(
                    "UPDATE batches SET state = 'COMPLETED' WHERE id = $1", batch.batch_id
                )
                assert await conn.fetchval("SELECT count(*) FROM webhook_events") == 1
                raise RuntimeError("the change fails after the update")
        assert await _events(owner_pool, tenant) == []
    finally:
        await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant)


async def test_record_events_only_for_endpoints_that_subscribe(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    tenant: uuid.UUID,
) -> None:
    await create_endpoint(
        hooks_stub,
        settings,
        tenant,
        URL,
        [pb.EVENT_TYPE_RECORD_FAILED, pb.EVENT_TYPE_RECORD_CLAIMED, pb.EVENT_TYPE_RECORD_REVOKED],
    )
    other = uuid.uuid4()  # no endpoint: its records' changes raise nothing
    try:
        batch = await insert_batch(
            owner_pool, tenant, states=("QUEUED", "INVITED", "QUEUED", "INVITED")
        )
        elsewhere = await insert_batch(owner_pool, other, states=("QUEUED",))
        for scope_tenant, arranged in ((tenant, batch), (other, elsewhere)):
            async with tenant_transaction(app_pool, service_scope(scope_tenant)) as conn:
                await conn.execute(
                    "UPDATE records SET state = 'FAILED', error_code = 'SMTP_REJECTED', "
                    "error_message = 'holder1@example.org refused' WHERE id = $1",
                    arranged.record_ids[0],
                )
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await conn.execute(
                "UPDATE records SET state = 'CLAIMED', claimed_at = now() WHERE id = $1",
                batch.record_ids[1],
            )
            # Not a subscribed transition.
            await conn.execute(
                "UPDATE records SET state = 'ISSUED' WHERE id = $1", batch.record_ids[2]
            )
            await conn.execute(
                "UPDATE records SET state = 'REVOKED', revoked_at = now(),"
                " revoke_reason = 'issued in error' WHERE id = $1",
                batch.record_ids[3],
            )
        found = await _events(owner_pool, tenant)
        assert [e["type"] for e in found] == ["record.failed", "record.claimed", "record.revoked"]
        failed = found[0]["payload"]["data"]
        assert failed == {
            "batch": f"batches/{batch.batch_id}",
            "record": str(batch.record_ids[0]),
            "row_number": 1,
            "error_code": "SMTP_REJECTED",
        }
        assert "example.org" not in str(found)
        assert await _events(owner_pool, other) == []
    finally:
        await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant)


async def test_a_contact_change_names_its_fields_never_the_values(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    tenant: uuid.UUID,
) -> None:
    await create_endpoint(
        hooks_stub,
        settings,
        tenant,
        URL,
        [pb.EVENT_TYPE_RECORD_CONTACT_UPDATED, pb.EVENT_TYPE_RECORD_EXPIRED],
    )
    try:
        arranged = await insert_batch(owner_pool, tenant, states=("INVITED", "INVITED"))
        first, second = arranged.record_ids
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await conn.execute(
                "UPDATE records SET email = 'new.address@example.org' WHERE id = $1", first
            )
            # Touching a record without changing its contact raises nothing.
            await conn.execute("UPDATE records SET updated_at = now() WHERE id = $1", second)
        [event] = await _events(owner_pool, tenant)
        assert (event["type"], event["deliveries"]) == ("record.contact_updated", 1)
        data = event["payload"]["data"]
        assert data == {
            "batch": f"batches/{arranged.batch_id}",
            "record": str(first),
            "row_number": 1,
            "fields": ["email"],
        }
        assert "new.address" not in str(event["payload"])
    finally:
        await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant)
