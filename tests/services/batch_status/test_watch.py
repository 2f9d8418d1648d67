"""WatchBatch: a Batch per change, ending when the batch is terminal; deadlines honoured."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from services.batch_status.servicer import WATCH_END_REASON_KEY
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.grpc import bearer
from tests.fixtures.lifecycle import invite


async def test_watch_reports_changes_and_ends_on_completion(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 4)
    md = bearer(settings, tenant, "ana", ["issuer"])
    seen: list[Any] = []
    trailers: list[tuple[str, str | bytes]] = []

    async def watch() -> None:
        request = batches_service_pb2.WatchBatchRequest(name=f"batches/{arranged.batch_id}")
        call = batches_stub.WatchBatch(request, metadata=md, timeout=30)
        async for batch in call:
            seen.append(batch)
        trailers.extend(await call.trailing_metadata())

    watcher = asyncio.create_task(watch())
    for record_id in arranged.record_ids:
        await asyncio.sleep(1.3)  # longer than the shared poll's interval: every step is seen
        await invite(owner_pool, [record_id])
    await asyncio.wait_for(watcher, 15)  # ends by itself once the batch is terminal
    assert seen[0].state == batch_pb2.BATCH_STATE_QUEUED
    assert seen[-1].state == batch_pb2.BATCH_STATE_COMPLETED
    assert seen[-1].percent_done == 100.0 and seen[-1].HasField("complete_time")
    invited = [b.record_counts.invited for b in seen]
    assert invited == sorted(invited) and len(set(invited)) == len(invited) == 5
    assert any(b.HasField("estimated_complete_time") for b in seen[1:-1])
    assert (WATCH_END_REASON_KEY, "WATCH_END_REASON_BATCH_ENDED") in trailers


async def test_watch_honours_the_deadline(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"])
    md = bearer(settings, tenant, "root", ["org_admin"])
    request = batches_service_pb2.WatchBatchRequest(name=f"batches/{arranged.batch_id}")
    received = 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in batches_stub.WatchBatch(request, metadata=md, timeout=1.0):
            received += 1
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert received == 1  # nothing changed after the first update

    # A client that walks away cancels the watch without any error on either side.
    call = batches_stub.WatchBatch(request, metadata=md)
    assert (await call.read()).state == batch_pb2.BATCH_STATE_QUEUED
    call.cancel()
    assert call.cancelled()
