import asyncio
import uuid
import zlib

import asyncpg
import orjson

from credbatch.signing.jose import b64url_decode, verify_compact
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import (
    StatusAllocator,
    get_status,
    list_uri,
    read_list,
    status_list_token,
)
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.jwks import published_jwks


async def test_concurrent_allocators_never_share_an_index_and_open_new_lists(
    app_pool: asyncpg.Pool,
) -> None:
    tenant = uuid.uuid4()
    allocators = [StatusAllocator(app_pool, block=16, list_size=64) for _ in range(4)]
    results = await asyncio.gather(*(a.take(tenant, 5) for a in allocators for _ in range(10)))
    entries = [e for batch in results for e in batch]
    assert len(entries) == 200
    assert len({(e.list_id, e.index) for e in entries}) == 200
    assert len({e.list_id for e in entries}) >= 4  # 4 x 64 = 256 entries needed lists
    assert all(0 <= e.index < 64 for e in entries)


def test_get_status_reads_lsb_first() -> None:
    bits = bytes([0b00000010, 0b10000000])
    assert get_status(bits, 0) == 0
    assert get_status(bits, 1) == 1
    assert get_status(bits, 15) == 1
    assert get_status(bits, 14) == 0


async def test_token_carries_compressed_list(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    entry = (await StatusAllocator(app_pool, block=8, list_size=64).take(tenant, 1))[0]
    key = await KeyRing(app_pool, b"k" * 32).active_key(tenant)
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        found = await read_list(conn, tenant, entry.list_id)
        jwks = await published_jwks(conn, tenant)
        assert await read_list(conn, tenant, uuid.uuid4()) is None
    assert found is not None
    uri = list_uri("http://x", tenant, entry.list_id)
    token = status_list_token(key=key, uri=uri, bits=found[0], bits_per_entry=found[1])
    header, payload = verify_compact(token, jwks, typ="statuslist+jwt")
    assert payload["sub"] == uri
    raw = zlib.decompress(b64url_decode(payload["status_list"]["lst"]))
    assert len(raw) == 8 and get_status(raw, entry.index) == 0
    assert orjson.loads(orjson.dumps(header))["kid"] == key.kid
