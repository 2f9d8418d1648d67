"""The upload header's claim mode through the real UploadService, read back by GetBatch."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.common.v1 import claim_mode_pb2
from services.batch_status.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.fixtures.uploads import Tenant, csv_file, refused, row, violations


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def batches_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    running = await start_app(settings, service_specs(settings, app_pool))
    return batches_service_pb2_grpc.BatchStatusServiceStub(running.channel)


async def _stored_and_shown(
    tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any, name: str
) -> tuple[str, int]:
    stored = await owner_pool.fetchval(
        "SELECT claim_mode FROM batches WHERE tenant_id = $1", tenant.tenant_id
    )
    shown = await batches_stub.GetBatch(
        batches_service_pb2.GetBatchRequest(name=name), metadata=tenant.metadata()
    )
    return stored, shown.claim_mode


async def test_a_download_batch_is_stored_and_shown_as_download(
    tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any
) -> None:
    response = await tenant.upload(
        csv_file([row(1)]), claim_mode=claim_mode_pb2.CLAIM_MODE_DOWNLOAD
    )
    assert response.batch.claim_mode == claim_mode_pb2.CLAIM_MODE_DOWNLOAD
    stored, shown = await _stored_and_shown(tenant, owner_pool, batches_stub, response.batch.name)
    assert (stored, shown) == ("DOWNLOAD", claim_mode_pb2.CLAIM_MODE_DOWNLOAD)


async def test_an_unspecified_claim_mode_is_a_wallet(
    tenant: Tenant, owner_pool: asyncpg.Pool, batches_stub: Any
) -> None:
    response = await tenant.upload(csv_file([row(1)]))
    assert response.batch.claim_mode == claim_mode_pb2.CLAIM_MODE_OID4VCI
    stored, shown = await _stored_and_shown(tenant, owner_pool, batches_stub, response.batch.name)
    assert (stored, shown) == ("OID4VCI", claim_mode_pb2.CLAIM_MODE_OID4VCI)


async def test_an_unknown_claim_mode_is_refused(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1)]), claim_mode=7)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == [("header.claim_mode", "INVALID_CLAIM_MODE")]
