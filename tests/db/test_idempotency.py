"""AIP-155 request-id claims as the application role: first wins, retries and racers see it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from credbatch.db import idempotency
from credbatch.errors import AlreadyExists, InvalidArgument
from credbatch.tenancy import service_scope, tenant_transaction


async def _claim(
    pool: asyncpg.Pool, tenant: uuid.UUID, kind: str, request_id: str, resource: uuid.UUID
) -> uuid.UUID | None:
    async with tenant_transaction(pool, service_scope(tenant)) as conn:
        return await idempotency.claim(conn, kind, request_id, resource)


async def test_the_first_claim_wins_per_tenant_and_kind(app_pool: asyncpg.Pool) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    assert await _claim(app_pool, tenant, "thing", "r-1", first) is None
    assert await _claim(app_pool, tenant, "thing", "r-1", second) == first
    assert await _claim(app_pool, tenant, "other_thing", "r-1", second) is None
    assert await _claim(app_pool, other, "thing", "r-1", second) is None
    async with tenant_transaction(app_pool, service_scope(tenant), readonly=True) as conn:
        assert await idempotency.find(conn, "thing", "r-1") == first
        assert await idempotency.find(conn, "thing", "r-2") is None


async def test_an_empty_request_id_claims_nothing(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    assert await _claim(app_pool, tenant, "thing", "", uuid.uuid4()) is None
    assert await _claim(app_pool, tenant, "thing", "", uuid.uuid4()) is None
    async with tenant_transaction(app_pool, service_scope(tenant), readonly=True) as conn:
        assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_a_too_long_request_id_names_the_field(app_pool: asyncpg.Pool) -> None:
    long_id = "x" * (idempotency.MAX_REQUEST_ID_CHARS + 1)
    with pytest.raises(InvalidArgument) as caught:
        async with tenant_transaction(app_pool, service_scope(uuid.uuid4())) as conn:
            await idempotency.claim(conn, "thing", long_id, uuid.uuid4(), "header.request_id")
    assert [(v.field, v.reason) for v in caught.value.violations] == [
        ("header.request_id", "TOO_LONG")
    ]
    assert idempotency.request_id_violation("x" * idempotency.MAX_REQUEST_ID_CHARS) is None


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_concurrent_claim_waits_for_the_first_transaction(
    app_pool: asyncpg.Pool, first_commits: bool
) -> None:
    tenant = uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    claimed, finish = asyncio.Event(), asyncio.Event()

    async def first_request() -> None:
        with contextlib.nullcontext() if first_commits else pytest.raises(RuntimeError):
            async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
                assert await idempotency.claim(conn, "thing", "race", first) is None
                claimed.set()
                await finish.wait()
                if not first_commits:
                    raise RuntimeError("the first request fails and rolls back")

    holder = asyncio.create_task(first_request())
    await claimed.wait()
    racer = asyncio.create_task(_claim(app_pool, tenant, "thing", "race", second))
    await asyncio.sleep(0.3)
    assert not racer.done()  # blocked on the first transaction's key
    finish.set()
    await holder
    assert await racer == (first if first_commits else None)


async def test_a_key_refuses_another_request_digest(app_pool: asyncpg.Pool) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    digest, changed = b"\x01" * 32, b"\x02" * 32
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        assert await idempotency.claim(conn, "thing", "r-1", first, "f", digest) is None
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        assert await idempotency.claim(conn, "thing", "r-1", second, "f", digest) == first
        assert await idempotency.find(conn, "thing", "r-1", "f", digest) == first
        with pytest.raises(AlreadyExists) as caught:
            await idempotency.claim(conn, "thing", "r-1", second, "header.request_id", changed)
        assert caught.value.reason == "REQUEST_ID_REUSED"
        assert [v.field for v in caught.value.violations] == ["header.request_id"]
        with pytest.raises(AlreadyExists):
            await idempotency.find(conn, "thing", "r-1", "f", changed)
    # Another tenant's key of the same id is not seen.
    async with tenant_transaction(app_pool, service_scope(other)) as conn:
        assert await idempotency.claim(conn, "thing", "r-1", second, "f", changed) is None


async def test_a_key_without_a_digest_matches_any_request(app_pool: asyncpg.Pool) -> None:
    # Keys stored before digests were kept, and kinds that keep none, answer every retry.
    tenant, first = uuid.uuid4(), uuid.uuid4()
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        assert await idempotency.claim(conn, "thing", "r-1", first) is None
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        assert await idempotency.claim(conn, "thing", "r-1", uuid.uuid4(), "f", b"\x03" * 32) == (
            first
        )
        digest = await conn.fetchval("SELECT request_digest FROM idempotency_keys")
        assert digest is None
