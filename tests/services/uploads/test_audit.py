"""Uploads leave audit entries: a stored batch (counts, schema, mediums; never a holder's
data), a refused file, and nothing for validate_only or a repeated request."""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from tests.fixtures.audit import actions, audit_entries, entry_text
from tests.fixtures.uploads import EMAIL, SMS, Tenant, csv_file, row


async def test_an_upload_is_audited_with_no_personal_data(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    rows = [row(i) for i in range(1, 6)]
    response = await tenant.upload(csv_file(rows), request_id="upload-7")
    batch = response.batch.name
    (entry,) = await audit_entries(owner_pool, tenant.tenant_id)
    assert (entry["action"], entry["resource"], entry["outcome"]) == ("batch.upload", batch, "OK")
    assert (entry["actor"], entry["actor_kind"], entry["request_id"]) == (
        "alice",
        "USER",
        "upload-7",
    )
    schema_id = tenant.schema.removeprefix("schemas/").split("@")[0]
    assert entry["details"] == {
        "records": 5,
        "schema": f"schemas/{schema_id}",
        "schema_version": 1,
        "mediums": ["EMAIL", "SMS"],
    }
    text = entry_text(entry)
    for i in range(1, 6):
        assert f"holder{i}@example.com" not in text
        assert f"+1415555{i:04d}" not in text
        assert f"Holder {i}" not in text
    assert "example.com" not in text
    assert "holders.csv" not in text
    # The same request again changes nothing and adds no entry.
    again = await tenant.upload(csv_file(rows), request_id="upload-7")
    assert again.batch.name == batch
    assert len(await audit_entries(owner_pool, tenant.tenant_id)) == 1


async def test_a_refused_file_is_audited_and_validate_only_is_not(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    await tenant.upload(csv_file([row(1)]), validate_only=True)
    assert await audit_entries(owner_pool, tenant.tenant_id) == []
    bad = csv_file([row(1), row(2, email="not-an-address ada@"), row(3)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.upload(bad, mediums=(EMAIL, SMS))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (entry,) = await audit_entries(owner_pool, tenant.tenant_id)
    assert actions([entry]) == [("batch.upload", "batches", entry["outcome"])]
    assert entry["outcome"] != "OK"
    assert entry["details"]["violations"] >= 1
    assert "ada@" not in entry_text(entry)
    assert "holder1@example.com" not in entry_text(entry)
