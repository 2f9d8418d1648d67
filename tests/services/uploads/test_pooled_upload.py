"""An upload validated by the validation pool stores exactly what one process would store,
and refuses an invalid file with the same report."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from credbatch.errors import InvalidArgument
from credbatch.schema.model import Medium
from credbatch.tenancy import TenantScope
from services.uploads.model import UploadRequest
from services.uploads.parallel import FIRST_BLOCK_BYTES
from services.uploads.uploader import Uploader
from services.uploads.validation_pool import ValidationPool
from tests.fixtures.uploads import Tenant, csv_file, row

CHUNK = 64 * 1024
ROWS = 9_999  # the fixture's phone numbers are distinct up to 10,000 rows


@pytest.fixture
def validation() -> Iterator[ValidationPool]:
    pool = ValidationPool(2)
    yield pool
    pool.close()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), CHUNK):
        yield data[at : at + CHUNK]


async def _records(pool: asyncpg.Pool, batch_id: str) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        "SELECT row_number, email, phone, attributes FROM records WHERE batch_id = $1"
        " ORDER BY row_number",
        batch_id,
    )
    return [tuple(r) for r in rows]


async def test_a_large_upload_stores_the_same_records(
    tenant: Tenant,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    validation: ValidationPool,
) -> None:
    await validation.start()
    caller = TenantScope(tenant.tenant_id, tenant.user, frozenset(tenant.roles), ("sales",))
    request = UploadRequest(tenant.schema, (Medium.EMAIL, Medium.SMS), department="sales")
    data = csv_file([row(i) for i in range(ROWS)])
    assert len(data) > 3 * FIRST_BLOCK_BYTES  # blocks after the first go to the pool

    alone = await Uploader(tenant.settings, app_pool).upload(caller, request, _chunks(data))
    pooled = await Uploader(tenant.settings, app_pool, validation).upload(
        caller, request, _chunks(data)
    )
    assert alone.batch is not None and pooled.batch is not None
    assert pooled.report == alone.report and pooled.report.rows_total == ROWS
    stored = await _records(owner_pool, str(pooled.batch.id))
    assert len(stored) == ROWS
    assert stored == await _records(owner_pool, str(alone.batch.id))


async def test_a_large_invalid_upload_is_refused_with_the_same_report(
    tenant: Tenant, app_pool: asyncpg.Pool, validation: ValidationPool
) -> None:
    await validation.start()
    caller = TenantScope(tenant.tenant_id, tenant.user, frozenset(tenant.roles), ("sales",))
    request = UploadRequest(tenant.schema, (Medium.EMAIL, Medium.SMS), department="sales")
    rows = [row(i) for i in range(ROWS)]
    rows[ROWS - 5] = row(10)  # a duplicate of a row in the service's own first block
    rows[ROWS // 2] = row(ROWS // 2, email="not an address")
    data = csv_file(rows)
    errors = []
    for uploader in (
        Uploader(tenant.settings, app_pool),
        Uploader(tenant.settings, app_pool, validation),
    ):
        with pytest.raises(InvalidArgument) as refused:
            await uploader.upload(caller, request, _chunks(data))
        errors.append((refused.value.message, refused.value.violations, refused.value.metadata))
    assert errors[0] == errors[1]
    assert [v.reason for v in errors[0][1]] == [
        "INVALID_EMAIL",
        "DUPLICATE_RECIPIENT",
        "DUPLICATE_RECIPIENT",
    ]
