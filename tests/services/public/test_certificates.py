"""A certificate follows its credential: served while it stands, 410 Gone once revoked.

Records are issued by the real issuance worker (real PDFs) and revoked by the function
RevokeRecords runs (``revoke_records``), as the application role; the public app runs on its
own role behind uvicorn.
"""

from __future__ import annotations

import asyncpg
import httpx
import orjson

from credbatch.batches.revocation import revoke_records
from credbatch.config import Settings
from credbatch.signing import opaque, sd_jwt
from credbatch.signing.jose import b64url_decode
from credbatch.tenancy import service_scope, tenant_transaction
from services.public.claim_page import STYLESHEET_PATH
from services.public.headers import CONTENT_SECURITY_POLICY
from tests.fixtures.issuance import (
    Arranged,
    PublicServer,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

_ISSUED = (
    "SELECT c.record_id, c.sd_jwt, ce.id AS certificate_id FROM credentials c"
    " JOIN certificates ce ON ce.tenant_id = c.tenant_id AND ce.record_id = c.record_id"
    " WHERE c.batch_id = $1 ORDER BY c.record_id"
)


async def _issued(
    settings: Settings, owner_pool: asyncpg.Pool, *batches: Arranged
) -> list[list[asyncpg.Record]]:
    for arranged in batches:
        await publish_jobs(settings, arranged)
    async with running_worker(settings):
        for arranged in batches:
            assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    return [await owner_pool.fetch(_ISSUED, arranged.batch_id) for arranged in batches]


def _assert_revoked_page(response: httpx.Response, arranged: Arranged) -> None:
    assert response.status_code == 410
    assert response.headers["content-type"].startswith("text/html")
    assert "revoked" in response.text
    assert b"%PDF" not in response.content
    # Nothing of the holder: no attribute value of any row of the batch.
    for row in arranged.rows:
        for value in row["attributes"].values():
            assert str(value) not in response.text, value
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


async def test_a_revoked_record_s_certificate_is_gone_and_its_batch_mates_are_not(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    arranged = await arrange_batch(owner_pool, 2, mediums=("EMAIL",))
    other_tenant = await arrange_batch(owner_pool, 1, mediums=("EMAIL",))
    (revoked, kept), (elsewhere,) = await _issued(
        worker_settings, owner_pool, arranged, other_tenant
    )
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        before = await client.get(f"/c/{revoked['certificate_id']}")
        assert before.status_code == 200
        assert before.content.startswith(b"%PDF")
        # Personal data that must stop at revocation: no cache may keep a copy.
        assert before.headers["cache-control"] == "no-store"

        async with tenant_transaction(app_pool, service_scope(arranged.tenant_id)) as conn:
            assert await revoke_records(conn, arranged.batch_id, [revoked["record_id"]], "x") == 1

        for method in ("GET", "HEAD"):
            gone = await client.request(method, f"/c/{revoked['certificate_id']}")
            assert gone.status_code == 410, method
        _assert_revoked_page(await client.get(f"/c/{revoked['certificate_id']}"), arranged)
        # The page's one resource, the stylesheet, is served under the same policy.
        assert (await client.get(STYLESHEET_PATH)).status_code == 200
        # The record beside it in the batch, and other tenants' records, keep theirs.
        for row in (kept, elsewhere):
            still = await client.get(f"/c/{row['certificate_id']}")
            assert still.status_code == 200 and still.content.startswith(b"%PDF")
        # Another tenant's id, under this tenant or with the revoked id's tenant swapped in:
        # 404, so a forged id learns neither existence nor revocation.
        for forged in (
            opaque.new_id(arranged.tenant_id)[:22] + elsewhere["certificate_id"][22:],
            opaque.new_id(other_tenant.tenant_id)[:22] + revoked["certificate_id"][22:],
        ):
            assert (await client.get(f"/c/{forged}")).status_code == 404, forged

    # The database itself keeps a revoked record's PDF from the public role.
    row = await public_pool.fetchrow(
        "SELECT revoked, pdf FROM public_certificate($1, $2)",
        arranged.tenant_id,
        revoked["certificate_id"],
    )
    assert row is not None and row["revoked"] is True and row["pdf"] is None


async def test_the_credential_carries_cred_url_only_as_a_disclosure(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    arranged = await arrange_batch(owner_pool, 1, mediums=("EMAIL",))
    ((issued,),) = await _issued(worker_settings, owner_pool, arranged)
    cred_url = f"{public_server.url}/c/{issued['certificate_id']}"
    jwt, disclosures = sd_jwt.split(issued["sd_jwt"])
    payload = orjson.loads(b64url_decode(jwt.split(".")[1]))
    assert "Cred_URL" not in payload
    assert cred_url not in orjson.dumps(payload).decode()
    decoded = [sd_jwt.decode_disclosure(d) for d in disclosures]
    assert ("Cred_URL", cred_url) in decoded
    # The issuer-signed part alone, a presentation disclosing nothing, verifies without it.
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        metadata = await client.get(f"/.well-known/jwt-vc-issuer/tenants/{arranged.tenant_id}")
    jwks = metadata.json()["jwks"]["keys"]
    bare = sd_jwt.verify(jwt + "~", jwks)
    assert bare.disclosed == {} and "Cred_URL" not in bare.claims
