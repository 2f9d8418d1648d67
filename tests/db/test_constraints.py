"""Invariants the schema enforces whatever the application does."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch
from tests.fixtures.database import insert_row


@dataclass(frozen=True)
class Issued:
    tenant: uuid.UUID
    batch_id: uuid.UUID
    record_ids: list[uuid.UUID]
    list_id: uuid.UUID
    kid: str


def key_row(tenant: uuid.UUID, kid: str, active: bool = True) -> dict[str, object]:
    return {
        "tenant_id": tenant,
        "kid": kid,
        "alg": "ES256",
        "public_jwk": {"kty": "EC"},
        "private_key_enc": b"x",
        "nonce": bytes(12),
        "active": active,
    }


def credential_row(issued: Issued, record_id: uuid.UUID, index: int) -> dict[str, object]:
    return {
        "tenant_id": issued.tenant,
        "id": uuid.uuid4(),
        "record_id": record_id,
        "batch_id": issued.batch_id,
        "kid": issued.kid,
        "status_list_id": issued.list_id,
        "status_index": index,
        "sd_jwt": "a.b.c~",
        "claim_token": f"token-{uuid.uuid4()}",
    }


async def issued_tenant(app_pool: asyncpg.Pool, records: int = 2) -> Issued:
    tenant = uuid.uuid4()
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        batch = await insert_batch(
            conn, tenant, creator="system:worker", states=["ISSUED"] * records
        )
        list_id, kid = uuid.uuid4(), "k0"
        await insert_row(conn, "signing_keys", key_row(tenant, kid))
        await insert_row(
            conn,
            "status_lists",
            {"tenant_id": tenant, "id": list_id, "size": 8, "bits": bytes(1)},
        )
    return Issued(tenant, batch.batch_id, batch.record_ids, list_id, kid)


async def test_one_active_key_per_tenant_under_a_race(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    first_inserted, release_first = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await insert_row(conn, "signing_keys", key_row(tenant, "first"))
            first_inserted.set()
            await release_first.wait()

    async def second() -> None:
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await insert_row(conn, "signing_keys", key_row(tenant, "second"))

    async with tenant_transaction(app_pool, service_scope(tenant)):
        pass  # provision the tenant up front: both racers then only insert keys
    one = asyncio.create_task(first())
    await asyncio.wait_for(first_inserted.wait(), 10)
    two = asyncio.create_task(second())
    await asyncio.sleep(0.3)
    assert not two.done(), "the second insert must wait for the first transaction"
    release_first.set()
    await asyncio.wait_for(one, 10)
    with pytest.raises(asyncpg.UniqueViolationError):
        await asyncio.wait_for(two, 10)

    # Rotation: deactivate, then add the new active key, in one transaction.
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        await conn.execute("UPDATE signing_keys SET active = false WHERE active")
        await insert_row(conn, "signing_keys", key_row(tenant, "rotated"))
    async with tenant_transaction(app_pool, service_scope(tenant), readonly=True) as conn:
        active = await conn.fetch("SELECT kid FROM signing_keys WHERE active")
        assert [r["kid"] for r in active] == ["rotated"]
        assert await conn.fetchval("SELECT count(*) FROM signing_keys") == 2


async def test_a_record_never_gets_two_credentials(app_pool: asyncpg.Pool) -> None:
    issued = await issued_tenant(app_pool)
    record = issued.record_ids[0]
    async with tenant_transaction(app_pool, service_scope(issued.tenant)) as conn:
        await insert_row(conn, "credentials", credential_row(issued, record, 0))
    with pytest.raises(asyncpg.UniqueViolationError):
        async with tenant_transaction(app_pool, service_scope(issued.tenant)) as conn:
            await insert_row(conn, "credentials", credential_row(issued, record, 1))


async def test_concurrent_issuance_of_one_record_yields_one_credential(
    app_pool: asyncpg.Pool,
) -> None:
    issued = await issued_tenant(app_pool)
    record = issued.record_ids[0]

    async def issue(index: int) -> None:
        async with tenant_transaction(app_pool, service_scope(issued.tenant)) as conn:
            await insert_row(conn, "credentials", credential_row(issued, record, index))
            await asyncio.sleep(0.1)

    results = await asyncio.gather(issue(0), issue(1), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, asyncpg.UniqueViolationError) for r in results) == 1


async def test_status_list_entry_is_used_once(app_pool: asyncpg.Pool) -> None:
    issued = await issued_tenant(app_pool)
    async with tenant_transaction(app_pool, service_scope(issued.tenant)) as conn:
        await insert_row(conn, "credentials", credential_row(issued, issued.record_ids[0], 3))
    with pytest.raises(asyncpg.UniqueViolationError):
        async with tenant_transaction(app_pool, service_scope(issued.tenant)) as conn:
            await insert_row(conn, "credentials", credential_row(issued, issued.record_ids[1], 3))


async def test_claim_tokens_are_unique_across_tenants(app_pool: asyncpg.Pool) -> None:
    one, two = await issued_tenant(app_pool), await issued_tenant(app_pool)
    row = credential_row(one, one.record_ids[0], 0)
    async with tenant_transaction(app_pool, service_scope(one.tenant)) as conn:
        await insert_row(conn, "credentials", row)
    clash = dict(credential_row(two, two.record_ids[0], 0), claim_token=row["claim_token"])
    with pytest.raises(asyncpg.UniqueViolationError):
        async with tenant_transaction(app_pool, service_scope(two.tenant)) as conn:
            await insert_row(conn, "credentials", clash)


async def test_one_default_template_per_tenant(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()

    def template(is_default: bool) -> dict[str, object]:
        return {
            "tenant_id": tenant,
            "id": uuid.uuid4(),
            "display_name": "t",
            "body": "b",
            "is_default": is_default,
            "created_by": "u",
        }

    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        await insert_row(conn, "sms_templates", template(True))
        await insert_row(conn, "sms_templates", template(False))
    with pytest.raises(asyncpg.UniqueViolationError):
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await insert_row(conn, "sms_templates", template(True))


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("UPDATE records SET state = 'DONE'", asyncpg.CheckViolationError),
        ("UPDATE records SET phone = '0123'", asyncpg.CheckViolationError),
        ("UPDATE batches SET state = 'RUNNING'", asyncpg.CheckViolationError),
        ("UPDATE batches SET mediums = '{FAX}'", asyncpg.CheckViolationError),
        ("UPDATE status_lists SET bits = '\\x00ff'::bytea", asyncpg.CheckViolationError),
        ("UPDATE status_lists SET next_index = 9", asyncpg.CheckViolationError),
        ("UPDATE records SET row_number = 1", asyncpg.UniqueViolationError),
    ],
)
async def test_check_constraints(
    app_pool: asyncpg.Pool, statement: str, error: type[Exception]
) -> None:
    issued = await issued_tenant(app_pool)
    with pytest.raises(error):
        async with tenant_transaction(app_pool, service_scope(issued.tenant)) as conn:
            await conn.execute(statement)
