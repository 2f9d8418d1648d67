"""Database failures through the edge on a real grpc.aio server and the real PostgreSQL.

Conflicts are run again (unary requests, and server streams before their first message) and
answered ABORTED past the last attempt or when the run cannot be repeated; a lost database is
UNAVAILABLE and a cancelled statement CANCELLED, neither run again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.templates.v1 import templates_service_pb2 as templates_pb
from credbatch.gen.templates.v1 import templates_service_pb2_grpc as templates_grpc
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.server.runner import ServiceSpec
from credbatch.tenancy import service_scope, tenant_transaction
from tests.db import provoke
from tests.fixtures.grpc import Metadata, RunningApp, StartApp, bearer, error_details

Scenario = Callable[[int], Awaitable[None]]


async def _nothing(run: int) -> None:
    return None


class _Templates(templates_grpc.TemplateServiceServicer):
    """ListCredentialSchemas runs ``scenario(run)``, run counting from 1."""

    def __init__(self) -> None:
        self.runs = 0
        self.scenario: Scenario = _nothing

    async def ListCredentialSchemas(
        self, request: templates_pb.ListCredentialSchemasRequest, context: object
    ) -> templates_pb.ListCredentialSchemasResponse:
        self.runs += 1
        await self.scenario(self.runs)
        return templates_pb.ListCredentialSchemasResponse(next_page_token=f"run {self.runs}")


class _Batches(batches_service_pb2_grpc.BatchStatusServiceServicer):
    """WatchBatch sends three messages; ``scenario(run)`` runs before the ``fail_before``-th."""

    def __init__(self) -> None:
        self.runs = 0
        self.fail_before = 0
        self.scenario: Scenario = _nothing

    async def WatchBatch(
        self, request: batches_service_pb2.WatchBatchRequest, context: object
    ) -> AsyncIterator[batch_pb2.Batch]:
        self.runs += 1
        for index in range(3):
            if index == self.fail_before:
                await self.scenario(self.runs)
            yield batch_pb2.Batch(name=f"batches/{index}")


class _Uploads(uploads_service_pb2_grpc.UploadServiceServicer):
    """UploadBatch reads the whole stream, then runs ``scenario(run)``."""

    def __init__(self) -> None:
        self.runs = 0
        self.scenario: Scenario = _nothing

    async def UploadBatch(
        self,
        request_iterator: AsyncIterator[uploads_service_pb2.UploadBatchRequest],
        context: object,
    ) -> uploads_service_pb2.UploadBatchResponse:
        self.runs += 1
        async for _ in request_iterator:
            pass
        await self.scenario(self.runs)
        return uploads_service_pb2.UploadBatchResponse()


@dataclass
class Servers:
    """The servicers behind one started server, and a caller allowed to call them all."""

    templates: _Templates
    batches: _Batches
    uploads: _Uploads
    running: RunningApp
    caller: Metadata


@pytest_asyncio.fixture
async def servers(settings: Settings, start_app: StartApp) -> Servers:
    templates = _Templates()  # type: ignore[abstract]
    batches = _Batches()  # type: ignore[abstract]
    uploads = _Uploads()
    specs = [
        ServiceSpec(
            "credbatch.templates.v1.TemplateService",
            lambda s: templates_grpc.add_TemplateServiceServicer_to_server(templates, s),
        ),
        ServiceSpec(
            "credbatch.batches.v1.BatchStatusService",
            lambda s: batches_service_pb2_grpc.add_BatchStatusServiceServicer_to_server(batches, s),
        ),
        ServiceSpec(
            "credbatch.uploads.v1.UploadService",
            lambda s: uploads_service_pb2_grpc.add_UploadServiceServicer_to_server(uploads, s),
        ),
    ]
    running = await start_app(settings, specs)
    caller = bearer(settings, uuid.uuid4(), "alice", ["org_admin"])
    return Servers(templates, batches, uploads, running, caller)


@pytest_asyncio.fixture
async def own_pool(db_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    # The application role's pool, of this test alone: tests terminate its connections.
    pool = await create_pool(db_settings.app_database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def _conflict_in(owner_pool: asyncpg.Pool, row: uuid.UUID, runs: set[int]) -> Scenario:
    """A scenario whose listed runs end in a real serialization failure."""

    async def scenario(run: int) -> None:
        await provoke.increment(owner_pool, row, interfere=run in runs)

    return scenario


async def _list(servers: Servers, **kwargs: Any) -> templates_pb.ListCredentialSchemasResponse:
    stub = templates_grpc.TemplateServiceStub(servers.running.channel)
    response: templates_pb.ListCredentialSchemasResponse = await stub.ListCredentialSchemas(
        templates_pb.ListCredentialSchemasRequest(), metadata=servers.caller, **kwargs
    )
    return response


async def _list_error(servers: Servers, **kwargs: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list(servers, **kwargs)
    return caught.value


async def test_unary_conflict_is_run_again(servers: Servers, owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    servers.templates.scenario = _conflict_in(owner_pool, row, {1})
    response = await _list(servers)
    assert response.next_page_token == "run 2"
    assert await provoke.probe_value(owner_pool, row) == 101  # one interference, one commit


async def test_unary_persistent_conflict_is_aborted(
    servers: Servers, owner_pool: asyncpg.Pool
) -> None:
    row = await provoke.probe_row(owner_pool)
    servers.templates.scenario = _conflict_in(owner_pool, row, {1, 2, 3, 4})
    error = await _list_error(servers)
    assert error.code() == grpc.StatusCode.ABORTED
    details = error_details(error)
    info = details.info
    assert info.reason == "TRANSACTION_CONFLICT"
    assert dict(info.metadata) == {"sqlstate": "40001", "attempts": "3"}
    # The same call may succeed once the other transaction ends: say when to try again.
    assert details.retry is not None and details.retry.retry_delay.ToMilliseconds() == 100
    assert servers.templates.runs == 3


async def test_unary_deadlock_is_run_again(
    servers: Servers, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    records = await provoke.two_records(app_pool, tenant)

    async def scenario(run: int) -> None:
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            if run == 1:
                await provoke.deadlock(conn, owner_pool, tenant, records)

    servers.templates.scenario = scenario
    assert (await _list(servers)).next_page_token == "run 2"


async def test_terminated_backend_is_unavailable_and_not_run_again(
    servers: Servers, own_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    async def scenario(run: int) -> None:
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4())) as conn:
            statement = asyncio.ensure_future(conn.execute("SELECT pg_sleep(5)"))
            await provoke.running(owner_pool, conn.get_server_pid())
            await provoke.terminate(owner_pool, conn.get_server_pid())
            await statement

    servers.templates.scenario = scenario
    error = await _list_error(servers)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = error_details(error)
    assert details.info.reason == "DATABASE_UNAVAILABLE"
    assert details.retry is not None and details.retry.retry_delay.seconds == 1
    assert error.details() == "the database is unavailable; try again"
    assert servers.templates.runs == 1


async def test_statement_timeout_is_cancelled(servers: Servers, own_pool: asyncpg.Pool) -> None:
    async def scenario(run: int) -> None:
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4()), readonly=True) as c:
            await c.execute("SET LOCAL statement_timeout = 50")
            await c.execute("SELECT pg_sleep(5)")

    servers.templates.scenario = scenario
    error = await _list_error(servers, timeout=30)
    assert error.code() == grpc.StatusCode.CANCELLED
    details = error_details(error)
    assert details.info.reason == "STATEMENT_CANCELLED"
    assert details.info.metadata["sqlstate"] == "57014"
    assert servers.templates.runs == 1


async def test_cancelled_backend_is_cancelled(
    servers: Servers, own_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    async def scenario(run: int) -> None:
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4()), readonly=True) as c:
            statement = asyncio.ensure_future(c.execute("SELECT pg_sleep(5)"))
            await provoke.running(owner_pool, c.get_server_pid())
            await provoke.cancel(owner_pool, c.get_server_pid())
            await statement

    servers.templates.scenario = scenario
    error = await _list_error(servers)
    assert error.code() == grpc.StatusCode.CANCELLED
    assert error_details(error).info.reason == "STATEMENT_CANCELLED"


async def test_deadline_ends_the_statement(
    servers: Servers, own_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    # grpc.aio cancels the handler at the deadline; asyncpg then cancels the statement, so
    # nothing keeps running for a caller that is gone (the 57014 that follows is never
    # answered: the caller already has DEADLINE_EXCEEDED).
    marker = f"deadline-{uuid.uuid4()}"

    async def scenario(run: int) -> None:
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4()), readonly=True) as c:
            await c.execute(f'SELECT pg_sleep(5) AS "{marker}"')

    servers.templates.scenario = scenario
    error = await _list_error(servers, timeout=0.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    query = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1"
    for _ in range(200):
        if not await owner_pool.fetchval(query, f"%{marker}%"):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the statement still runs after the deadline")
    assert servers.templates.runs == 1


async def _watch(servers: Servers) -> list[str]:
    stub = batches_service_pb2_grpc.BatchStatusServiceStub(servers.running.channel)
    names: list[str] = []
    call = stub.WatchBatch(
        batches_service_pb2.WatchBatchRequest(name=f"batches/{uuid.uuid4()}"),
        metadata=servers.caller,
    )
    try:
        async for batch in call:
            names.append(batch.name)
    except grpc.aio.AioRpcError as error:
        names.append(f"error {error.code().name} {error_details(error).info.reason}")
    return names


async def test_stream_conflict_before_the_first_message_is_run_again(
    servers: Servers, owner_pool: asyncpg.Pool
) -> None:
    row = await provoke.probe_row(owner_pool)
    servers.batches.scenario = _conflict_in(owner_pool, row, {1})
    assert await _watch(servers) == ["batches/0", "batches/1", "batches/2"]
    assert servers.batches.runs == 2


async def test_stream_conflict_after_a_message_is_aborted(
    servers: Servers, owner_pool: asyncpg.Pool
) -> None:
    row = await provoke.probe_row(owner_pool)
    servers.batches.fail_before = 1
    servers.batches.scenario = _conflict_in(owner_pool, row, {1})
    assert await _watch(servers) == ["batches/0", "error ABORTED TRANSACTION_CONFLICT"]
    assert servers.batches.runs == 1


async def test_request_stream_conflict_is_aborted_at_once(
    servers: Servers, owner_pool: asyncpg.Pool
) -> None:
    row = await provoke.probe_row(owner_pool)
    servers.uploads.scenario = _conflict_in(owner_pool, row, {1})
    stub = uploads_service_pb2_grpc.UploadServiceStub(servers.running.channel)

    async def requests() -> AsyncIterator[uploads_service_pb2.UploadBatchRequest]:
        for chunk in (b"name\n", b"Ada\n"):
            yield uploads_service_pb2.UploadBatchRequest(chunk=chunk)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UploadBatch(requests(), metadata=servers.caller)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    info = error_details(caught.value).info
    assert info.reason == "TRANSACTION_CONFLICT"
    assert info.metadata["attempts"] == "1"
    assert servers.uploads.runs == 1
