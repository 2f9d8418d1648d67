"""The upload header's reminder schedule through the real UploadService, read back by GetBatch:
the header's days, else the tenant's default, else none; refused when out of shape."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.common.v1 import medium_pb2
from services.batch_status.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.fixtures.uploads import Tenant, csv_file, refused, row, violations


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def batches_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    running = await start_app(settings, service_specs(settings, app_pool))
    return batches_service_pb2_grpc.BatchStatusServiceStub(running.channel)


async def _schedule(tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any, name: str) -> Any:
    """(stored days or None, GetBatch's days)."""
    stored = await owner_pool.fetchval(
        "SELECT reminder_days FROM batches WHERE tenant_id = $1 AND id = $2",
        tenant.tenant_id,
        uuid.UUID(name.split("/")[1]),
    )
    shown = await batches_stub.GetBatch(
        batches_service_pb2.GetBatchRequest(name=name), metadata=tenant.metadata()
    )
    return stored, list(shown.reminder_days)


async def _tenant_default(owner_pool: asyncpg.Pool, tenant: Tenant, days: list[int]) -> None:
    await owner_pool.execute(
        "INSERT INTO tenant_profiles (tenant_id, reminder_days) VALUES ($1, $2)"
        " ON CONFLICT (tenant_id) DO UPDATE SET reminder_days = EXCLUDED.reminder_days",
        tenant.tenant_id,
        days,
    )


async def test_the_headers_days_are_the_batchs_schedule(
    tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any
) -> None:
    await _tenant_default(owner_pool, tenant, [7])
    response = await tenant.upload(csv_file([row(1)]), reminder_days=[3, 10])
    assert list(response.batch.reminder_days) == [3, 10]
    schedule = await _schedule(tenant, owner_pool, batches_stub, response.batch.name)
    assert schedule == ([3, 10], [3, 10])


async def test_the_tenants_default_is_used_when_the_header_gives_none(
    tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any
) -> None:
    await _tenant_default(owner_pool, tenant, [2, 5])
    response = await tenant.upload(csv_file([row(1)]))
    schedule = await _schedule(tenant, owner_pool, batches_stub, response.batch.name)
    assert schedule == ([2, 5], [2, 5])


async def test_no_reminders_without_header_or_default(
    tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any
) -> None:
    response = await tenant.upload(csv_file([row(1)]))
    schedule = await _schedule(tenant, owner_pool, batches_stub, response.batch.name)
    assert schedule == (None, [])
    shown = await batches_stub.GetBatch(
        batches_service_pb2.GetBatchRequest(name=response.batch.name), metadata=tenant.metadata()
    )
    assert shown.reminders_sent == 0 and shown.reminder_email_template == ""


@pytest.mark.parametrize(
    ("days", "reason"),
    [
        ([10, 3], "NOT_ASCENDING"),
        ([3, 3], "NOT_ASCENDING"),
        ([0], "OUT_OF_RANGE"),
        ([91], "OUT_OF_RANGE"),
        ([1, 2, 3, 4, 5, 6], "TOO_MANY_ENTRIES"),
    ],
)
async def test_a_schedule_out_of_shape_is_refused(
    tenant: Tenant, days: list[int], reason: str
) -> None:
    error = await refused(tenant, csv_file([row(1)]), reminder_days=days)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == [("header.reminder_days", reason)]


async def test_a_reminder_template_needs_its_medium(tenant: Tenant) -> None:
    error = await refused(
        tenant,
        csv_file([row(1)]),
        mediums=[medium_pb2.MEDIUM_EMAIL],
        reminder_sms_template=f"smsTemplates/{uuid.uuid4()}",
    )
    assert violations(error) == [("header.reminder_sms_template", "TEMPLATE_WITHOUT_MEDIUM")]


async def test_a_missing_reminder_template_is_not_found(tenant: Tenant) -> None:
    error = await refused(
        tenant, csv_file([row(1)]), reminder_email_template=f"emailTemplates/{uuid.uuid4()}"
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
