import asyncio
import os
import uuid

import asyncpg

from credbatch.signing.keys import KeyRing
from credbatch.signing.sd_jwt import issue, verify
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.jwks import published_jwks


async def test_concurrent_first_use_creates_one_active_key(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    kek = os.urandom(32)
    # Separate rings behave like separate worker processes.
    rings = [KeyRing(app_pool, kek) for _ in range(6)]
    keys = await asyncio.gather(*(ring.active_key(tenant) for ring in rings))
    assert len({k.kid for k in keys}) == 1
    count = await owner_pool.fetchval(
        "SELECT count(*) FROM signing_keys WHERE tenant_id = $1", tenant
    )
    assert count == 1
    stored = await owner_pool.fetchrow(
        "SELECT private_key_enc FROM signing_keys WHERE tenant_id = $1", tenant
    )
    assert b"PRIVATE" not in bytes(stored["private_key_enc"])
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        jwks = await published_jwks(conn, tenant)
    assert [j["kid"] for j in jwks] == [keys[0].kid]
    token = issue(key=keys[0].private_key, kid=keys[0].kid, claims={}, disclosable={"a": 1})
    assert verify(token, jwks).disclosed == {"a": 1}


async def test_key_is_unreadable_under_another_kek(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    await KeyRing(app_pool, os.urandom(32)).active_key(tenant)
    from credbatch.signing.kek import KeyUnwrapError

    try:
        await KeyRing(app_pool, os.urandom(32)).active_key(tenant)
    except KeyUnwrapError:
        pass
    else:
        raise AssertionError("a key wrapped under another KEK must not load")
