"""services.uploads.repository.insert_batch: the request id claimed with the batch row, in one
statement; a taken or reused id inserts nothing."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import pytest

from credbatch.batches.claim_mode import ClaimMode
from credbatch.errors import AlreadyExists
from credbatch.names import BATCHES, parse_name
from credbatch.tenancy import TenantScope, tenant_transaction
from services.uploads.repository import IDEMPOTENCY_KIND, NewBatch, insert_batch
from tests.fixtures.uploads import Tenant, batch_count, csv_file, row

FIRST = b"1" * 32
OTHER = b"2" * 32


async def _template(tenant: Tenant, owner_pool: asyncpg.Pool) -> NewBatch:
    """A batch row as an upload of the tenant stores it, under a new id."""
    response = await tenant.upload(csv_file([row(1)]))
    stored = await owner_pool.fetchrow(
        "SELECT * FROM batches WHERE id = $1", parse_name(response.batch.name, BATCHES, "name")
    )
    assert stored is not None
    return NewBatch(
        id=uuid.uuid4(),
        schema_id=stored["schema_id"],
        schema_version=stored["schema_version"],
        mediums=tuple(stored["mediums"]),
        email_template_id=stored["email_template_id"],
        sms_template_id=stored["sms_template_id"],
        certificate_template_id=None,
        creator=tenant.user,
        department=stored["department"],
        filename="again.csv",
        claim_mode=ClaimMode(stored["claim_mode"]),
        validity_seconds=None,
        traceparent=None,
        total_records=1,
    )


async def test_the_request_id_is_claimed_with_the_batch_or_names_its_holder(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    template = await _template(tenant, owner_pool)
    caller = TenantScope(tenant.tenant_id, tenant.user, frozenset(tenant.roles), ("sales",))
    first, second, third = (dataclasses.replace(template, id=uuid.uuid4()) for _ in range(3))
    async with tenant_transaction(app_pool, caller) as conn:
        assert await insert_batch(conn, first, "repo-1", FIRST) is None
    key = await owner_pool.fetchrow(
        "SELECT resource_id, request_digest FROM idempotency_keys"
        " WHERE tenant_id = $1 AND kind = $2 AND request_id = 'repo-1'",
        tenant.tenant_id,
        IDEMPOTENCY_KIND,
    )
    assert key is not None and (key["resource_id"], key["request_digest"]) == (first.id, FIRST)
    # The same request again: the holder is named and nothing is inserted.
    async with tenant_transaction(app_pool, caller) as conn:
        assert await insert_batch(conn, second, "repo-1", FIRST) == first.id
    # Another request with the id: refused, nothing inserted.
    with pytest.raises(AlreadyExists) as reused:
        async with tenant_transaction(app_pool, caller) as conn:
            await insert_batch(conn, second, "repo-1", OTHER)
    assert reused.value.reason == "REQUEST_ID_REUSED"
    # Without a request id: the batch alone, no key.
    async with tenant_transaction(app_pool, caller) as conn:
        assert await insert_batch(conn, third) is None
    ids = {
        r["id"]
        for r in await owner_pool.fetch(
            "SELECT id FROM batches WHERE tenant_id = $1", tenant.tenant_id
        )
    }
    assert first.id in ids and third.id in ids and second.id not in ids
    assert await batch_count(owner_pool, tenant.tenant_id) == 3  # with the template's upload


async def test_a_claim_rolled_back_with_its_batch_leaves_the_id_free(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    template = await _template(tenant, owner_pool)
    caller = TenantScope(tenant.tenant_id, tenant.user, frozenset(tenant.roles), ("sales",))
    with pytest.raises(RuntimeError):
        async with tenant_transaction(app_pool, caller) as conn:
            assert await insert_batch(conn, template, "repo-2", FIRST) is None
            raise RuntimeError("the upload failed after the batch row")
    later = dataclasses.replace(template, id=uuid.uuid4())
    async with tenant_transaction(app_pool, caller) as conn:
        assert await insert_batch(conn, later, "repo-2", OTHER) is None
