"""A fast client's file is stored while its end is still being validated; a problem found
then creates nothing; and no connection is held while a client is still sending."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from credbatch.errors import InvalidArgument
from credbatch.schema.model import Medium
from credbatch.tenancy import TenantScope
from services.uploads.model import UploadRequest
from services.uploads.parallel import FIRST_BLOCK_BYTES
from services.uploads.repository import GROUP_ROWS
from services.uploads.uploader import Uploader, UploadOutcome
from services.uploads.validation_pool import BlockResult, BlockTask, ValidationPool
from tests.fixtures.uploads import Tenant, batch_count, batch_rows, csv_file, row

ROWS = 9_999  # the fixture's phone numbers are distinct up to 10,000 rows
CHUNK = 64 * 1024

# A transaction of this database writing the table, not committed yet: the lock an INSERT
# takes, held by some connection other than the one asking.
_WRITING = """
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()
  AND l.relation = '{}'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted
"""
_WRITING_RECORDS = _WRITING.format("records")
_WRITING_BATCHES = _WRITING.format("batches")


class _LastBlockHeld(ValidationPool):
    """The real pool, but the file's last block is validated only once ``release`` is set."""

    def __init__(self) -> None:
        super().__init__(2)
        self.release = asyncio.Event()

    async def validate(self, task: BlockTask) -> BlockResult:
        if task.last:
            await self.release.wait()
        return await super().validate(task)


@pytest.fixture
def held() -> Iterator[_LastBlockHeld]:
    pool = _LastBlockHeld()
    yield pool
    pool.release.set()
    pool.close()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), CHUNK):
        yield data[at : at + CHUNK]


async def _until(pool: asyncpg.Pool, query: str) -> None:
    for _ in range(500):
        if await pool.fetchval(query):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never true: {query}")


def _caller(tenant: Tenant) -> TenantScope:
    return TenantScope(tenant.tenant_id, tenant.user, frozenset(tenant.roles), ("sales",))


def _request(tenant: Tenant) -> UploadRequest:
    return UploadRequest(tenant.schema, (Medium.EMAIL, Medium.SMS), department="sales")


async def test_records_are_written_while_the_last_block_is_validated(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, held: _LastBlockHeld
) -> None:
    await held.start()
    data = csv_file([row(i) for i in range(ROWS)])
    assert len(data) > 3 * FIRST_BLOCK_BYTES
    upload = asyncio.ensure_future(
        Uploader(tenant.settings, app_pool, held).upload(
            _caller(tenant), _request(tenant), _chunks(data)
        )
    )
    # The last block is not validated, yet the rows before it are being inserted.
    await _until(owner_pool, _WRITING_RECORDS)
    assert not upload.done()
    held.release.set()
    outcome: UploadOutcome = await asyncio.wait_for(upload, 30)
    assert outcome.batch is not None and outcome.report.valid
    assert outcome.batch.total == outcome.report.rows_total == ROWS
    stored = await batch_rows(owner_pool, tenant.tenant_id)
    assert [r["row_number"] for r in stored] == list(range(1, ROWS + 1))
    assert [r["email"] for r in stored] == [f"holder{i}@example.com" for i in range(ROWS)]
    total = await owner_pool.fetchval(
        "SELECT total_records FROM batches WHERE id = $1", outcome.batch.id
    )
    assert total == ROWS


async def test_a_problem_in_the_last_block_rolls_back_the_records_already_written(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, held: _LastBlockHeld
) -> None:
    await held.start()
    rows = [row(i) for i in range(ROWS)]
    rows[ROWS - 3] = row(ROWS - 3, email="not an address")
    upload = asyncio.ensure_future(
        Uploader(tenant.settings, app_pool, held).upload(
            _caller(tenant), _request(tenant), _chunks(csv_file(rows))
        )
    )
    await _until(owner_pool, _WRITING_RECORDS)
    assert await owner_pool.fetchval(_WRITING_RECORDS)
    held.release.set()
    with pytest.raises(InvalidArgument) as refused:
        await asyncio.wait_for(upload, 30)
    [violation] = refused.value.violations
    assert violation.reason == "INVALID_EMAIL"
    assert violation.field == f"rows[{ROWS - 3 + 2}].email"
    assert await batch_count(owner_pool, tenant.tenant_id) == 0
    assert await batch_rows(owner_pool, tenant.tenant_id) == []
    async with app_pool.acquire() as conn:  # the connection went back clean
        assert await conn.fetchval("SELECT 1") == 1


async def test_no_transaction_is_open_while_the_client_is_still_sending(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    data = csv_file([row(i) for i in range(3 * GROUP_ROWS)])
    paused = asyncio.Event()
    resume = asyncio.Event()

    async def slow_client() -> AsyncIterator[bytes]:
        half = len(data) // 2
        yield data[:half]
        paused.set()
        await resume.wait()
        yield data[half:]

    upload = asyncio.ensure_future(
        Uploader(tenant.settings, app_pool).upload(_caller(tenant), _request(tenant), slow_client())
    )
    await asyncio.wait_for(paused.wait(), 5)
    await asyncio.sleep(0.3)  # time to validate (and, were it allowed, store) the first half
    # The store's first statement inserts the batch: not begun while the client sends.
    assert await owner_pool.fetchval(_WRITING_BATCHES) == 0
    assert not upload.done()
    resume.set()
    outcome = await asyncio.wait_for(upload, 30)
    assert outcome.batch is not None and outcome.batch.total == 3 * GROUP_ROWS
