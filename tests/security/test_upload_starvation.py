"""Attack: slow uploads must not starve other tenants of the database or the service.

Real uploads and batch-status services on one pool of 10 application-role connections (the
uploads process's size). Three attacker tenants each open as many uploads as they may, send
a header and one chunk, then stall. While they hang, another tenant's upload and a GetBatch
finish (before any stalled upload ends) and no pooled connection is in use; each stalled
upload then ends at the idle timeout with DEADLINE_EXCEEDED and leaves nothing behind; one
more upload by an attacker tenant is refused with RESOURCE_EXHAUSTED, not queued behind them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio

from credbatch.catalog import repository as catalog
from credbatch.catalog.model import SchemaDraft
from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.schema.model import Attribute, AttributeType
from credbatch.tenancy import TenantScope, tenant_transaction
from services.batch_status.main import service_specs as batch_specs
from services.uploads.main import service_specs as upload_specs
from tests.fixtures.grpc import Metadata, StartApp, bearer, error_details

IDLE_SECONDS = 2.0
PER_TENANT = 4
ATTACKERS = 3
Request = uploads_service_pb2.UploadBatchRequest


@pytest_asyncio.fixture(loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.app_database_url, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


async def _schema(pool: asyncpg.Pool, tenant: uuid.UUID) -> str:
    scope = TenantScope(tenant, "admin", frozenset({"org_admin"}))
    attributes = (Attribute("name", AttributeType.STRING, required=True),)
    async with tenant_transaction(pool, scope) as conn:
        stored = await catalog.create_schema(conn, SchemaDraft("Pass", attributes), "admin")
    return stored.schema.name


def _header(schema: str) -> Request:
    return Request(
        header=uploads_service_pb2.UploadBatchHeader(
            schema=schema, mediums=[medium_pb2.MEDIUM_EMAIL], filename="holders.csv"
        )
    )


async def _connections_in_use(pool: asyncpg.Pool) -> int:
    """Pooled connections in use, once releases under way (a reset each) have finished."""
    deadline = time.monotonic() + 2.0
    while True:
        in_use: int = pool.get_size() - pool.get_idle_size()
        if in_use == 0 or time.monotonic() > deadline:
            return in_use
        await asyncio.sleep(0.05)


async def _stalled_upload(
    stub: uploads_service_pb2_grpc.UploadServiceStub,
    schema: str,
    metadata: Metadata,
    release: asyncio.Event,
) -> grpc.aio.AioRpcError:
    async def messages() -> AsyncIterator[Request]:
        yield _header(schema)
        yield Request(chunk=b"email,name\r\nada@example.com,Ada\r\n")
        await release.wait()  # the attacker never sends the rest

    with pytest.raises(grpc.aio.AioRpcError) as info:
        call: Any = stub.UploadBatch(messages(), metadata=metadata)  # type: ignore[arg-type]
        await call
    return info.value


async def test_stalled_uploads_take_nothing_from_other_tenants(
    settings: Settings, start_app: StartApp, pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tuned = settings.with_overrides(
        upload_idle_timeout=IDLE_SECONDS, upload_max_concurrent_per_tenant=PER_TENANT
    )
    uploads = await start_app(tuned, upload_specs(tuned, pool))
    batches = await start_app(tuned, batch_specs(tuned, pool))
    upload_stub = uploads_service_pb2_grpc.UploadServiceStub(uploads.channel)
    batch_stub = batches_service_pb2_grpc.BatchStatusServiceStub(batches.channel)

    attackers = [uuid.uuid4() for _ in range(ATTACKERS)]
    victim = uuid.uuid4()
    schemas = {tenant: await _schema(pool, tenant) for tenant in [*attackers, victim]}
    release = asyncio.Event()
    stalls = [
        asyncio.ensure_future(
            _stalled_upload(
                upload_stub,
                schemas[tenant],
                bearer(tuned, tenant, f"mallory{i}", ["issuer"], ["default"]),
                release,
            )
        )
        for tenant in attackers
        for i in range(PER_TENANT)
    ]
    try:
        await asyncio.sleep(0.5)  # every stalled upload has sent its chunk
        assert not any(stall.done() for stall in stalls)
        # Twelve uploads hang, and not one of them holds a pooled connection.
        assert await _connections_in_use(pool) == 0
        open_transactions = await owner_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND usename = 'credbatch_app' AND xact_start IS NOT NULL"
        )
        assert open_transactions == 0

        # One more from an attacker tenant is refused, not queued for a slot (queued, it would
        # be accepted once a stalled upload ends, then stall itself).
        extra = await asyncio.wait_for(
            _stalled_upload(
                upload_stub,
                schemas[attackers[0]],
                bearer(tuned, attackers[0], "mallory-extra", ["issuer"], ["default"]),
                release,
            ),
            IDLE_SECONDS * 3,
        )
        assert extra.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(extra).info.reason == "TOO_MANY_UPLOADS"

        # Meanwhile another tenant uploads and reads its batch, while the stalled uploads
        # still hang: nothing of theirs stood in its way.
        victim_metadata = bearer(tuned, victim, "alice", ["issuer"], ["default"])

        async def quick() -> AsyncIterator[Request]:
            yield _header(schemas[victim])
            yield Request(chunk=b"email,name\r\nbob@example.com,Bob\r\n")

        response = await asyncio.wait_for(
            upload_stub.UploadBatch(quick(), metadata=victim_metadata),
            IDLE_SECONDS * 3,
        )
        fetched = await asyncio.wait_for(
            batch_stub.GetBatch(
                batches_service_pb2.GetBatchRequest(name=response.batch.name),
                metadata=victim_metadata,
            ),
            IDLE_SECONDS * 3,
        )
        assert fetched.total_records == 1
        assert not any(stall.done() for stall in stalls)

        # The stalled uploads end at the idle timeout, each with a clear error.
        errors = await asyncio.wait_for(asyncio.gather(*stalls), IDLE_SECONDS * 3)
    finally:
        release.set()
        for stall in stalls:
            stall.cancel()
    for error in errors:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error_details(error).info.reason == "UPLOAD_IDLE_TIMEOUT"
    created = await owner_pool.fetchval(
        "SELECT count(*) FROM batches WHERE tenant_id = ANY($1::uuid[])", attackers
    )
    assert created == 0
    # The attackers' slots are free again: a real upload of theirs now goes through.
    again = await asyncio.wait_for(
        upload_stub.UploadBatch(
            _finite(schemas[attackers[0]]),
            metadata=bearer(tuned, attackers[0], "mallory0", ["issuer"], ["default"]),
        ),
        IDLE_SECONDS * 2,
    )
    assert again.batch.total_records == 1


async def _finite(schema: str) -> AsyncIterator[Request]:
    yield _header(schema)
    yield Request(chunk=b"email,name\r\ncy@example.com,Cy\r\n")
