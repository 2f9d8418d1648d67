"""The report of a badly broken file: a small trailer, and validate_only's full report."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
import pytest

from tests.fixtures.grpc import error_details
from tests.fixtures.uploads import Tenant, batch_count, csv_file, row

ERRORS = 5000


def broken_file() -> bytes:
    # Every row has one bad cell, with a long enum message: 5,000 problems.
    return csv_file([row(i, level="Diamond" * 30) for i in range(ERRORS)])


async def test_five_thousand_errors_keep_the_trailer_small(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await tenant.upload(broken_file())
    error = info.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    metadata: Any = error.trailing_metadata() or ()
    trailer = sum(len(key) + len(value) for key, value in metadata)
    assert trailer < 4096, trailer
    details = error_details(error)
    assert details.info.reason == "INVALID_FILE"
    assert details.info.metadata["error_count"] == str(ERRORS)
    assert details.bad_request is not None
    listed = details.bad_request.field_violations
    assert 10 <= len(listed) <= 100
    assert details.info.metadata["errors_listed"] == str(len(listed))
    assert listed[0].field == "rows[2].level" and listed[0].reason == "INVALID_ENUM"
    assert details.info.metadata["first_error_row"] == "2"
    assert details.info.metadata["first_error_column"] == "level"
    assert details.info.metadata["first_error_reason"] == "INVALID_ENUM"
    assert all(len(v.description) <= 160 for v in listed)
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_validate_only_returns_the_full_report_and_creates_nothing(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    response = await tenant.upload(broken_file(), validate_only=True)
    report = response.report
    assert not report.valid and not response.HasField("batch")
    assert report.rows_total == ERRORS and report.error_count == ERRORS
    assert [e.row for e in report.errors] == list(range(2, ERRORS + 2))
    assert {(e.column, e.code) for e in report.errors} == {("level", "INVALID_ENUM")}
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_validate_only_of_a_valid_file_creates_nothing(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    response = await tenant.upload(csv_file([row(1), row(2)]), validate_only=True)
    assert response.report.valid and response.report.rows_total == 2
    assert not response.HasField("batch")
    assert await batch_count(owner_pool, tenant.tenant_id) == 0
