"""ListBatches: keyset paging under concurrent inserts, filters, tokens bound to the filter."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.grpc import bearer, error_details

Request = batches_service_pb2.ListBatchesRequest


async def test_paging_is_exact_while_batches_arrive(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    base = datetime.now(UTC) - timedelta(hours=1)
    # Some batches share a create_time: the id breaks the tie, so none is skipped or repeated.
    existing = {
        (
            await insert_batch(
                owner_pool,
                tenant,
                schema,
                creator="ana",
                created_at=base + timedelta(seconds=i // 3),
            )
        ).batch_id
        for i in range(90)
    }
    md = bearer(settings, tenant, "root", ["org_admin"])
    stop = asyncio.Event()
    arrived: set[uuid.UUID] = set()

    async def insert_meanwhile() -> None:
        while not stop.is_set():
            made = await insert_batch(owner_pool, tenant, schema, creator="ana")
            arrived.add(made.batch_id)
            await asyncio.sleep(0)

    inserter = asyncio.create_task(insert_meanwhile())
    try:
        seen: list[uuid.UUID] = []
        token = ""
        while True:
            page = await batches_stub.ListBatches(
                Request(page_size=7, page_token=token), metadata=md
            )
            seen += [uuid.UUID(b.name.removeprefix("batches/")) for b in page.batches]
            times = [b.create_time.ToDatetime() for b in page.batches]
            assert times == sorted(times, reverse=True)
            token = page.next_page_token
            if not token:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await inserter
    assert arrived, "no batch arrived while paging: the test proved nothing"
    assert len(seen) == len(set(seen)), "a batch came twice"
    assert existing <= set(seen), "a batch that existed before paging was skipped"


async def test_filters(batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    other_schema = await insert_schema(owner_pool, tenant)
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    a = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        department="sales",
        created_at=t0,
        states=["INVITED"],
        batch_state="COMPLETED",
    )
    b = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="bob",
        department="hr",
        created_at=t0 + timedelta(days=1),
    )
    c = await insert_batch(
        owner_pool,
        tenant,
        other_schema,
        creator="ana",
        department="hr",
        created_at=t0 + timedelta(days=2),
    )
    md = bearer(settings, tenant, "root", ["org_admin"])

    async def names(text: str) -> list[uuid.UUID]:
        page = await batches_stub.ListBatches(Request(filter=text), metadata=md)
        return [uuid.UUID(x.name.removeprefix("batches/")) for x in page.batches]

    assert await names('creator = "ana"') == [c.batch_id, a.batch_id]
    assert await names("department = hr AND creator = ana") == [c.batch_id]
    assert await names(f'schema = "schemas/{schema}"') == [b.batch_id, a.batch_id]
    assert await names("state = COMPLETED") == [a.batch_id]
    assert await names("state = BATCH_STATE_QUEUED") == [c.batch_id, b.batch_id]
    assert await names(
        'create_time >= "2025-03-02T00:00:00Z" AND create_time < "2025-03-03T00:00:00Z"'
    ) == [b.batch_id]
    assert await names('create_time > "2025-03-02T00:00:00+00:00"') == [c.batch_id]
    assert await names("state = COMPLETED AND state = QUEUED") == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('creator = "ana" OR creator = "bob"', "`OR`"),
        ("filename = x.csv", "`filename`"),
        ("(state = QUEUED)", "parentheses"),
        ('creator != "ana"', "`!=`"),
        ("state = DONE", "'DONE'"),
        ('create_time = "2025-01-01T00:00:00Z"', "`=`"),
        ('create_time > "2025-01-01"', "time zone"),
        ('schema = "templates/1"', "schemas/"),
    ],
)
async def test_unsupported_filter_is_named(
    batches_stub: Any, settings: Settings, text: str, named: str
) -> None:
    md = bearer(settings, uuid.uuid4(), "root", ["org_admin"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batches_stub.ListBatches(Request(filter=text), metadata=md)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(caught.value)
    assert details.fields == ["filter"]
    assert named in details.bad_request.field_violations[0].description  # type: ignore[union-attr]


async def test_token_is_bound_to_its_filter_and_page_size_is_capped(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    for _ in range(3):
        await insert_batch(owner_pool, tenant, schema, creator="ana")
    md = bearer(settings, tenant, "root", ["org_admin"])
    page = await batches_stub.ListBatches(
        Request(page_size=1, filter='creator = "ana"'), metadata=md
    )
    assert page.next_page_token
    same = await batches_stub.ListBatches(
        Request(page_size=1, filter='creator = "ana"', page_token=page.next_page_token),
        metadata=md,
    )
    assert same.batches[0].name != page.batches[0].name
    for bad_token, text in ((page.next_page_token, ""), ("garbage!", 'creator = "ana"')):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await batches_stub.ListBatches(Request(filter=text, page_token=bad_token), metadata=md)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(caught.value).fields == ["page_token"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batches_stub.ListBatches(Request(page_size=-1), metadata=md)
    assert error_details(caught.value).fields == ["page_size"]
    everything = await batches_stub.ListBatches(Request(page_size=100_000), metadata=md)
    assert len(everything.batches) == 3 and not everything.next_page_token
    assert everything.batches[0].state == batch_pb2.BATCH_STATE_QUEUED
