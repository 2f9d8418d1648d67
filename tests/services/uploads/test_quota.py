"""The open-records quota: an upload beyond it is RESOURCE_EXHAUSTED and creates nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.fixtures.uploads import Tenant, batch_count, csv_file, row


def details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The whole google.rpc.Status (tests.fixtures.grpc.error_details keeps only two kinds)."""
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no google.rpc.Status in the trailers")


async def test_upload_over_open_records_quota_is_refused(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    await owner_pool.execute(
        "INSERT INTO tenant_limits (tenant_id, max_open_records) VALUES ($1, 5)",
        tenant.tenant_id,
    )
    first = await tenant.upload(csv_file([row(i) for i in range(1, 4)]))
    assert first.report.rows_total == 3

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await tenant.upload(csv_file([row(i) for i in range(10, 13)]))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = details(raised.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "OPEN_RECORDS_QUOTA_EXCEEDED"
    assert info.metadata["open_records"] == "6"
    assert info.metadata["max_open_records"] == "5"
    quota = error_details_pb2.QuotaFailure()
    assert any(d.Unpack(quota) for d in status.details)
    assert quota.violations[0].subject == "tenant"
    # Nothing of the refused upload exists.
    assert await batch_count(owner_pool, tenant.tenant_id) == 1
    pending = await owner_pool.fetchval(
        "SELECT sum(pending) FROM dispatch_batches WHERE tenant_id = $1", tenant.tenant_id
    )
    assert pending == 3

    # Two more fit exactly.
    assert (await tenant.upload(csv_file([row(20), row(21)]))).report.rows_total == 2


async def test_unlimited_tenant_is_not_counted(tenant: Tenant, owner_pool: asyncpg.Pool) -> None:
    await owner_pool.execute(
        "INSERT INTO tenant_limits (tenant_id, max_open_records) VALUES ($1, NULL)",
        tenant.tenant_id,
    )
    assert (await tenant.upload(csv_file([row(1), row(2)]))).report.rows_total == 2
