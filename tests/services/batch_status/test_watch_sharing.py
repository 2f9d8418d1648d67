"""WatchBatch at scale: one shared read per batch, visibility per caller, caps and lifetime."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch.batches.model import BatchView
from credbatch.config import Settings
from credbatch.errors import NotFound, ResourceExhausted
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc
from credbatch.tenancy import TenantScope
from services.batch_status.main import service_specs
from services.batch_status.servicer import WATCH_END_REASON_KEY
from services.batch_status.status import BatchStatus
from services.batch_status.watch import WATCH_RETRY_SECONDS, WatchLimits
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.grpc import StartApp, bearer
from tests.fixtures.lifecycle import invite


class CountingStatus(BatchStatus):
    """BatchStatus that counts its batch reads, by whose scope they ran."""

    def __init__(self, pool: asyncpg.Pool, limits: WatchLimits) -> None:
        super().__init__(pool, "http://127.0.0.1:8000", limits)
        self.reads: list[str] = []

    async def get(self, scope: TenantScope, batch_id: uuid.UUID) -> BatchView:
        self.reads.append(scope.user_id)
        return await super().get(scope, batch_id)


def user(tenant: uuid.UUID, sub: str, roles: set[str], departments: tuple[str, ...] = ()) -> Any:
    return TenantScope(tenant, sub, frozenset(roles), departments)


async def drain(stream: Any, into: list[BatchView]) -> None:
    async for view in stream:
        into.append(view)


async def test_fifty_watchers_share_one_read_per_second(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 3)
    status = CountingStatus(app_pool, WatchLimits(per_caller=100))
    seen: list[list[BatchView]] = [[] for _ in range(50)]
    callers = [user(tenant, f"user-{i % 5}", {"org_admin"}) for i in range(50)]
    tasks = [
        asyncio.create_task(drain(status.watch(callers[i], arranged.batch_id), seen[i]))
        for i in range(50)
    ]
    await asyncio.sleep(1.0)
    first_reads = len(status.reads)
    assert first_reads <= 50 + 2  # each caller's own read, plus the shared poll's
    await invite(owner_pool, arranged.record_ids[:1])
    await asyncio.sleep(3.0)
    shared = [who for who in status.reads if who == "system:worker"]
    assert 2 <= len(shared) <= 5  # about one a second for all fifty, over about four seconds
    assert len(status.reads) - len(shared) == 50
    assert all(s[-1].counts.invited == 1 for s in seen)  # every watcher got the change
    await invite(owner_pool, arranged.record_ids[1:])
    await asyncio.wait_for(asyncio.gather(*tasks), 5)  # all end on the terminal state
    assert all(s[-1].terminal and s[-1].counts.invited == 3 for s in seen)
    assert status._watches.active == 0


async def test_a_caller_who_cannot_see_the_batch_gets_not_found(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"])
    status = CountingStatus(app_pool, WatchLimits())
    # Someone who may see it is watching, so the shared poll runs.
    watching = status.watch(user(tenant, "root", {"org_admin"}), arranged.batch_id)
    assert (await anext(watching)).id == arranged.batch_id
    for outsider in (
        user(tenant, "bob", {"issuer"}, ("default",)),  # not the creator
        user(tenant, "olga", {"observer"}, ("hr",)),  # another department
        user(uuid.uuid4(), "root", {"org_admin"}),  # another tenant
    ):
        with pytest.raises(NotFound):
            await anext(status.watch(outsider, arranged.batch_id))
    await watching.aclose()
    assert status._watches.active == 0


async def test_caps_per_caller_and_per_process(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"])
    status = CountingStatus(app_pool, WatchLimits(per_caller=2, total=3))
    ana, root = user(tenant, "ana", {"issuer"}, ("default",)), user(tenant, "root", {"org_admin"})
    open_ = [status.watch(ana, arranged.batch_id) for _ in range(2)]
    for stream in open_:
        await anext(stream)
    with pytest.raises(ResourceExhausted) as caught:
        await anext(status.watch(ana, arranged.batch_id))
    assert caught.value.reason == "WATCH_LIMIT_PER_CALLER"
    third = status.watch(root, arranged.batch_id)
    await anext(third)
    with pytest.raises(ResourceExhausted) as caught:
        await anext(status.watch(user(tenant, "eve", {"org_admin"}), arranged.batch_id))
    assert caught.value.reason == "WATCH_LIMIT"
    assert caught.value.retry_delay == WATCH_RETRY_SECONDS
    await open_[0].aclose()  # a slot comes free when a watch ends
    replacement = status.watch(ana, arranged.batch_id)
    await anext(replacement)
    for stream in (open_[1], third, replacement):
        await stream.aclose()
    assert status._watches.active == 0


async def test_stream_ends_ok_after_its_lifetime_and_limits_reach_clients(
    settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, start_app: StartApp
) -> None:
    limited = settings.with_overrides(watch_max_seconds=1.5, watch_max_per_caller=1)
    running = await start_app(limited, service_specs(limited, app_pool))
    stub: Any = batches_service_pb2_grpc.BatchStatusServiceStub(running.channel)
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"])
    md = bearer(settings, tenant, "root", ["org_admin"])
    request = batches_service_pb2.WatchBatchRequest(name=f"batches/{arranged.batch_id}")
    call = stub.WatchBatch(request, metadata=md, timeout=10)
    first = await call.read()
    assert first.state == batch_pb2.BATCH_STATE_QUEUED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.WatchBatch(request, metadata=md, timeout=5):
            pass
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # No change: nothing more, then the end of the stream, OK, within its lifetime.
    assert await call.read() is grpc.aio.EOF  # type: ignore[attr-defined]
    assert await call.code() == grpc.StatusCode.OK
    # The batch still runs: the trailer tells the client to watch again.
    assert (WATCH_END_REASON_KEY, "WATCH_END_REASON_STREAM_LIFETIME") in tuple(
        await call.trailing_metadata()
    )


async def test_leaving_a_stream_logs_no_error(
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    start_app: StartApp,
    span_exporter: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 40000
    )
    running = await start_app(settings, service_specs(settings, app_pool))
    # A fixed 64 KiB flow-control window: a report the client stops reading blocks the server
    # in its send, so the cancellation reaches the server outside the stream's generator.
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{running.port}", options=[("grpc.http2.bdp_probe", 0)]
    ) as channel:
        stub: Any = batches_service_pb2_grpc.BatchStatusServiceStub(channel)
        md = bearer(settings, tenant, "root", ["org_admin"])
        name = f"batches/{arranged.batch_id}"
        caplog.set_level(logging.WARNING)
        for _ in range(3):
            watch = stub.WatchBatch(batches_service_pb2.WatchBatchRequest(name=name), metadata=md)
            assert (await watch.read()).state == batch_pb2.BATCH_STATE_QUEUED
            report = stub.DownloadBatchReport(
                batches_service_pb2.DownloadBatchReportRequest(name=name), metadata=md
            )
            assert (await report.read()).chunk
            await asyncio.sleep(0.5)  # mid-stream: the server waits for a change or to send
            watch.cancel()
            report.cancel()
        await asyncio.sleep(1.0)  # the server closes the abandoned streams
    # grpc's core logs the send it could not finish on the cancelled call (ExecuteBatchError,
    # "raised in core"); that record is grpc's own, outside any code of ours.
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and "ExecuteBatchError" not in r.getMessage()
    ]
    assert errors == [], [r.getMessage() for r in errors]
    ended = {
        s.name.rsplit("/", 1)[-1]: s.attributes.get("rpc.grpc.status_code")
        for s in span_exporter.get_finished_spans()
    }
    # The spans still end, as CANCELLED.
    assert ended["WatchBatch"] == ended["DownloadBatchReport"] == grpc.StatusCode.CANCELLED.value[0]
