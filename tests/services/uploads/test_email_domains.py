"""Email addresses whose top-level domain no mail can reach, through the real UploadService.

A top-level domain is at least two characters and never all digits, so ``holder@example.c``
and ``a@b.123`` are typing mistakes (or an IP address cut short), refused with the row and
column named before any batch exists, rather than invitations that bounce later.
"""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from tests.fixtures.grpc import error_details
from tests.fixtures.uploads import Tenant, batch_count, csv_file, row


@pytest.mark.parametrize("address", ["holder@example.c", "a@b.123", "holder@mail.example.9"])
async def test_a_one_letter_or_numeric_top_level_domain_is_refused(
    tenant: Tenant, owner_pool: asyncpg.Pool, address: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await tenant.upload(csv_file([row(1), row(2, email=address), row(3)]))
    error = info.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(error)
    assert details.bad_request is not None
    found = [(v.field, v.reason) for v in details.bad_request.field_violations]
    # The header is row 1: the second data row is row 3.
    assert found == [("rows[3].email", "INVALID_EMAIL")]
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_two_letter_and_longer_top_level_domains_are_accepted(tenant: Tenant) -> None:
    rows = [row(1, email="holder@example.co"), row(2, email="holder@example.museum")]
    response = await tenant.upload(csv_file(rows))
    assert response.report.valid
