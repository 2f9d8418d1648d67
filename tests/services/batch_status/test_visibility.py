"""Who sees which batch and its records, for every RPC: three tenants, two departments, every role.

Tenant A has a batch of issuer ana in `sales` and one of issuer bob in `hr`; tenant B has a
batch of a user with the same sub `ana`; tenant C has none. Every caller tries every batch of
every tenant: visible ones work, the others are NOT_FOUND exactly like a batch that does not
exist (same message shape, nothing else).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.grpc import Metadata, bearer, error_details

# The generated stub is typed for the synchronous API; on an aio channel its calls are
# awaitables and async iterators.
Stub = Any


@dataclass(frozen=True)
class World:
    tenants: dict[str, uuid.UUID]
    batches: dict[str, uuid.UUID]  # a_sales (ana), a_hr (bob), b_sales (ana of tenant B)


@dataclass(frozen=True)
class Caller:
    label: str
    tenant: str
    sub: str
    roles: tuple[str, ...]
    departments: tuple[str, ...]
    sees: frozenset[str]
    may_change: frozenset[str]


CALLERS = [
    Caller(
        "issuer ana",
        "A",
        "ana",
        ("issuer",),
        ("sales",),
        frozenset({"a_sales"}),
        frozenset({"a_sales"}),
    ),
    Caller(
        "issuer bob", "A", "bob", ("issuer",), ("hr",), frozenset({"a_hr"}), frozenset({"a_hr"})
    ),
    Caller(
        "observer sales",
        "A",
        "olga",
        ("observer",),
        ("sales",),
        frozenset({"a_sales"}),
        frozenset(),
    ),
    Caller(
        "observer hr+sales",
        "A",
        "omar",
        ("observer",),
        ("hr", "sales"),
        frozenset({"a_sales", "a_hr"}),
        frozenset(),
    ),
    Caller(
        "issuer+observer sales",
        "A",
        "ivy",
        ("issuer", "observer"),
        ("sales",),
        frozenset({"a_sales"}),
        frozenset(),
    ),
    Caller(
        "org_admin A",
        "A",
        "root",
        ("org_admin",),
        ("default",),
        frozenset({"a_sales", "a_hr"}),
        frozenset({"a_sales", "a_hr"}),
    ),
    Caller(
        "service A",
        "A",
        "svc",
        ("service",),
        (),
        frozenset({"a_sales", "a_hr"}),
        frozenset({"a_sales", "a_hr"}),
    ),
    Caller(
        "issuer ana of B",
        "B",
        "ana",
        ("issuer",),
        ("sales",),
        frozenset({"b_sales"}),
        frozenset({"b_sales"}),
    ),
    Caller(
        "observer of B",
        "B",
        "olga",
        ("observer",),
        ("sales", "hr"),
        frozenset({"b_sales"}),
        frozenset(),
    ),
    Caller("org_admin C", "C", "root", ("org_admin",), (), frozenset(), frozenset()),
]
BATCHES = ("a_sales", "a_hr", "b_sales")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(owner_pool: asyncpg.Pool) -> World:
    tenants = {name: uuid.uuid4() for name in "ABC"}
    schemas = {name: await insert_schema(owner_pool, t) for name, t in tenants.items()}
    done = ["INVITED", "FAILED", "INVITED"]
    a_sales = await insert_batch(
        owner_pool, tenants["A"], schemas["A"], creator="ana", department="sales", states=done
    )
    a_hr = await insert_batch(
        owner_pool, tenants["A"], schemas["A"], creator="bob", department="hr", states=done
    )
    b_sales = await insert_batch(
        owner_pool, tenants["B"], schemas["B"], creator="ana", department="sales", states=done
    )
    return World(
        tenants,
        {"a_sales": a_sales.batch_id, "a_hr": a_hr.batch_id, "b_sales": b_sales.batch_id},
    )


def meta(settings: Settings, world: World, caller: Caller) -> Metadata:
    return bearer(
        settings, world.tenants[caller.tenant], caller.sub, caller.roles, caller.departments
    )


def not_found_message(batch_id: uuid.UUID) -> str:
    return f"batch batches/{batch_id} not found"


async def assert_not_found(call: Any, batch_id: uuid.UUID) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == not_found_message(batch_id)


async def drain(stream: Any) -> list[Any]:
    return [item async for item in stream]


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.label)
async def test_get_list_report_watch(
    batches_stub: Stub, settings: Settings, world: World, caller: Caller
) -> None:
    md = meta(settings, world, caller)
    listed = await batches_stub.ListBatches(batches_service_pb2.ListBatchesRequest(), metadata=md)
    assert {b.name for b in listed.batches} == {f"batches/{world.batches[k]}" for k in caller.sees}
    for key in BATCHES:
        batch_id = world.batches[key]
        name = f"batches/{batch_id}"
        if key in caller.sees:
            got = await batches_stub.GetBatch(
                batches_service_pb2.GetBatchRequest(name=name), metadata=md
            )
            assert got.state == batch_pb2.BATCH_STATE_COMPLETED_WITH_ERRORS
            chunks = await drain(
                batches_stub.DownloadBatchReport(
                    batches_service_pb2.DownloadBatchReportRequest(name=name), metadata=md
                )
            )
            assert b"".join(c.chunk for c in chunks).count(b"\r\n") == 4
            records = await batches_stub.ListRecords(
                batches_service_pb2.ListRecordsRequest(parent=name), metadata=md
            )
            assert [r.row_number for r in records.records] == [1, 2, 3]
            watched = await drain(
                batches_stub.WatchBatch(
                    batches_service_pb2.WatchBatchRequest(name=name), metadata=md
                )
            )
            assert len(watched) == 1
        else:
            await assert_not_found(
                batches_stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=md),
                batch_id,
            )
            await assert_not_found(
                drain(
                    batches_stub.DownloadBatchReport(
                        batches_service_pb2.DownloadBatchReportRequest(name=name), metadata=md
                    )
                ),
                batch_id,
            )
            await assert_not_found(
                batches_stub.ListRecords(
                    batches_service_pb2.ListRecordsRequest(parent=name), metadata=md
                ),
                batch_id,
            )
            await assert_not_found(
                drain(
                    batches_stub.WatchBatch(
                        batches_service_pb2.WatchBatchRequest(name=name), metadata=md
                    )
                ),
                batch_id,
            )
    # A batch that exists nowhere reads exactly like one the caller may not see.
    missing = uuid.uuid4()
    await assert_not_found(
        batches_stub.GetBatch(
            batches_service_pb2.GetBatchRequest(name=f"batches/{missing}"), metadata=md
        ),
        missing,
    )


def _change_outcome(caller: Caller, key: str) -> grpc.StatusCode:
    if not set(caller.roles) & {"issuer", "org_admin", "service"}:
        return grpc.StatusCode.PERMISSION_DENIED
    if key in caller.may_change:
        return grpc.StatusCode.OK
    if key in caller.sees:
        return grpc.StatusCode.PERMISSION_DENIED  # sees it as an observer, did not create it
    return grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.label)
@pytest.mark.parametrize("rpc", ["RetryFailedRecords", "CancelBatch"])
async def test_retry_and_cancel(
    batches_stub: Stub,
    settings: Settings,
    owner_pool: asyncpg.Pool,
    world: World,
    caller: Caller,
    rpc: str,
) -> None:
    md = meta(settings, world, caller)
    for key in BATCHES:
        name = f"batches/{world.batches[key]}"
        if rpc == "RetryFailedRecords":
            call = batches_stub.RetryFailedRecords(
                batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
            )
        else:
            call = batches_stub.CancelBatch(
                batches_service_pb2.CancelBatchRequest(name=name), metadata=md
            )
        expected = _change_outcome(caller, key)
        if expected is grpc.StatusCode.OK:
            reply = await call
            assert reply.name == name
            if rpc == "RetryFailedRecords":
                # Put the arranged failure back so the next caller finds the same world.
                await owner_pool.execute(
                    "UPDATE records SET state = 'FAILED' WHERE batch_id = $1 AND row_number = 2",
                    world.batches[key],
                )
                await owner_pool.execute(
                    "UPDATE batches SET state = 'COMPLETED_WITH_ERRORS' WHERE id = $1",
                    world.batches[key],
                )
            continue
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == expected, (key, caught.value.details())
        if expected is grpc.StatusCode.NOT_FOUND:
            assert caught.value.details() == not_found_message(world.batches[key])


@pytest.mark.parametrize(
    "name", ["batches/not-a-uuid", "schemas/" + str(uuid.UUID(int=1)), "", "batches/"]
)
async def test_bad_names_name_the_field(
    batches_stub: Stub, settings: Settings, world: World, name: str
) -> None:
    md = bearer(settings, world.tenants["A"], "root", ["org_admin"])
    calls: Sequence[Any] = (
        batches_stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=md),
        drain(
            batches_stub.DownloadBatchReport(
                batches_service_pb2.DownloadBatchReportRequest(name=name), metadata=md
            )
        ),
        drain(
            batches_stub.WatchBatch(batches_service_pb2.WatchBatchRequest(name=name), metadata=md)
        ),
        batches_stub.CancelBatch(batches_service_pb2.CancelBatchRequest(name=name), metadata=md),
    )
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_details(caught.value).fields == ["name"]
