"""Public endpoints: 404 for unknown or forged ids, no tenant reachable through another's."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import httpx

from credbatch.config import Settings
from credbatch.signing import opaque
from tests.fixtures.issuance import (
    PublicServer,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)


async def test_ids_of_one_tenant_are_not_reachable_through_another(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    first = await arrange_batch(owner_pool, 1, mediums=("EMAIL",))
    second = await arrange_batch(owner_pool, 1, mediums=("EMAIL",))
    await publish_jobs(worker_settings, first)
    await publish_jobs(worker_settings, second)
    async with running_worker(worker_settings):
        await wait_for_batch(owner_pool, first.batch_id)
        await wait_for_batch(owner_pool, second.batch_id)
    rows = await owner_pool.fetch(
        "SELECT c.tenant_id, c.claim_token, c.status_list_id, ce.id AS certificate_id,"
        " c.claim_expires_at - c.created_at AS claim_life"
        " FROM credentials c JOIN certificates ce"
        " ON ce.tenant_id = c.tenant_id AND ce.record_id = c.record_id"
        " WHERE c.batch_id = ANY($1::uuid[])",
        [first.batch_id, second.batch_id],
    )
    by_tenant = {row["tenant_id"]: row for row in rows}
    # Claim links expire CREDBATCH_CLAIM_TTL after issuance (the worker sets it).
    assert {row["claim_life"] for row in rows} == {timedelta(seconds=worker_settings.claim_ttl)}
    a, b = by_tenant[first.tenant_id], by_tenant[second.tenant_id]
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        # The genuine URLs work.
        assert (await client.get(f"/claim/{a['claim_token']}")).status_code == 200
        assert (await client.get(f"/c/{a['certificate_id']}")).status_code == 200
        list_path = f"/tenants/{first.tenant_id}/statuslists/{a['status_list_id']}"
        assert (await client.get(list_path)).status_code == 200
        # B's status list under A's tenant path, and B's ids re-labelled with A's tenant.
        forged_list = f"/tenants/{first.tenant_id}/statuslists/{b['status_list_id']}"
        relabelled = opaque.new_id(first.tenant_id)[:22] + b["claim_token"][22:]
        relabelled_cert = opaque.new_id(first.tenant_id)[:22] + b["certificate_id"][22:]
        for path in (
            forged_list,
            f"/claim/{relabelled}",
            f"/claim/{relabelled}/credential",
            f"/c/{relabelled_cert}",
            f"/claim/{opaque.new_id(first.tenant_id)}",
            f"/c/{opaque.new_id(first.tenant_id)}",
            "/claim/not-a-token",
            "/c/%2e%2e",
            f"/tenants/{first.tenant_id}/statuslists/{uuid.uuid4()}",
            f"/tenants/{first.tenant_id}/statuslists/not-a-uuid",
            f"/.well-known/jwt-vc-issuer/tenants/{uuid.uuid4()}",
            "/.well-known/jwt-vc-issuer/tenants/nope",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path
        # Each tenant's metadata publishes only its own key.
        keys_a = (await client.get(f"/.well-known/jwt-vc-issuer/tenants/{first.tenant_id}")).json()
        keys_b = (await client.get(f"/.well-known/jwt-vc-issuer/tenants/{second.tenant_id}")).json()
        kids_a = {k["kid"] for k in keys_a["jwks"]["keys"]}
        kids_b = {k["kid"] for k in keys_b["jwks"]["keys"]}
        assert kids_a and kids_b and not kids_a & kids_b
