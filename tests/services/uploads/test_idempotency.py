"""A retried upload (same request_id) returns the same batch and stores nothing twice; the
same request_id with another file or header is refused, per tenant."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from credbatch.gen.uploads.v1 import uploads_service_pb2
from tests.fixtures.grpc import error_details
from tests.fixtures.uploads import EMAIL, Tenant, batch_count, batch_rows, csv_file, row


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


def _reused(error: grpc.aio.AioRpcError) -> None:
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    details = error_details(error)
    assert details.info.reason == "REQUEST_ID_REUSED"
    assert details.bad_request is not None
    assert [(v.field, v.reason) for v in details.bad_request.field_violations] == [
        ("header.request_id", "REQUEST_ID_REUSED")
    ]


async def test_the_same_request_chunked_otherwise_gets_the_first_batch(tenant: Tenant) -> None:
    content = csv_file([row(i) for i in range(20)])
    first = await tenant.upload(content, request_id="req-4", chunk=7)
    again = await tenant.upload(content, request_id="req-4", chunk=64 * 1024)
    assert again.batch.name == first.batch.name


async def test_another_file_with_the_same_request_id_is_refused(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    await tenant.upload(csv_file([row(i) for i in range(5)]), request_id="req-5")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.upload(csv_file([row(i) for i in range(6)]), request_id="req-5")
    _reused(caught.value)
    # One byte differs: still another file.
    content = csv_file([row(i) for i in range(5)])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.upload(content.replace(b"holder1", b"holder9"), request_id="req-5")
    _reused(caught.value)
    assert await batch_count(owner_pool, tenant.tenant_id) == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"filename": "other.csv"},
        {"mediums": [EMAIL]},
        {"department": "hr"},
        {"credential_validity": Duration(seconds=3600)},
    ],
)
async def test_another_header_with_the_same_request_id_is_refused(
    tenant: Tenant, owner_pool: asyncpg.Pool, changed: dict[str, Any]
) -> None:
    content = csv_file([row(i) for i in range(3)])
    first = await tenant.upload(content, request_id="req-6")
    assert first.batch.total_records == 3
    # The retry's file is not validated again: the changed header alone refuses it.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tenant.upload(content, request_id="req-6", **changed)
    _reused(caught.value)
    assert await batch_count(owner_pool, tenant.tenant_id) == 1


async def test_concurrent_uploads_of_different_files_with_one_request_id(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    # Neither sees the other's key before storing: the claim in the store decides.
    files = [csv_file([row(i) for i in range(n)]) for n in (2000, 2001)]
    outcomes = await asyncio.gather(
        *(tenant.upload(f, request_id="req-7", chunk=4096) for f in files),
        return_exceptions=True,
    )
    created = [o for o in outcomes if isinstance(o, uploads_service_pb2.UploadBatchResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(created) == 1 and len(refused) == 1, outcomes
    _reused(refused[0])
    assert await batch_count(owner_pool, tenant.tenant_id) == 1


async def test_another_tenants_request_id_is_independent(
    tenant: Tenant, other_tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    mine = await tenant.upload(csv_file([row(i) for i in range(4)]), request_id="shared")
    theirs = await other_tenant.upload(csv_file([row(i) for i in range(7)]), request_id="shared")
    assert theirs.batch.name != mine.batch.name and theirs.batch.total_records == 7
    # And each retry still finds its own tenant's batch.
    again = await other_tenant.upload(csv_file([row(i) for i in range(7)]), request_id="shared")
    assert again.batch.name == theirs.batch.name
    assert await batch_count(owner_pool, tenant.tenant_id) == 1
    assert await batch_count(owner_pool, other_tenant.tenant_id) == 1
