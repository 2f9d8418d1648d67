"""Hypothesis through the real service: no input crashes it, only valid files make a batch."""

from __future__ import annotations

import asyncpg
import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.uploads import HEADER, Tenant, batch_count, csv_file, row

_cell = st.text(alphabet=st.sampled_from(list('a1@.,"\r\n +-\u00e9')), max_size=8)


async def _check(tenant: Tenant, pool: asyncpg.Pool, content: bytes) -> None:
    before = await batch_count(pool, tenant.tenant_id)
    try:
        response = await tenant.upload(content, chunk=13)
    except grpc.aio.AioRpcError as error:
        assert error.code() in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), error
        assert await batch_count(pool, tenant.tenant_id) == before
        return
    assert response.report.valid
    assert await batch_count(pool, tenant.tenant_id) == before + 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
async def test_arbitrary_bytes(tenant: Tenant, owner_pool: asyncpg.Pool, data: bytes) -> None:
    await _check(tenant, owner_pool, data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(st.tuples(st.integers(0, 8), _cell), max_size=6),
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf"]),
)
async def test_arbitrary_csv(
    tenant: Tenant, owner_pool: asyncpg.Pool, cells: list[tuple[int, str]], prefix: bytes
) -> None:
    # Valid rows with arbitrary cells swapped in: sometimes valid, mostly not.
    columns = HEADER.split(",")
    rows = [row(i, **{columns[c]: value}) for i, (c, value) in enumerate(cells, start=1)]
    await _check(tenant, owner_pool, prefix + csv_file(rows))
