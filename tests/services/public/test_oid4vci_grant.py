"""One grant, one credential; stateless nonces; the singular proof of drafts 13-15."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import asyncpg

from services.public.app import create_app
from services.public.nonces import Nonces
from tests.services.public.oid4vci_world import (
    NONCE_KEY,
    PUBLIC_URL,
    Wallet,
    client_of,
    offer_one,
    oid4vci_app,
)


async def test_an_access_token_obtains_one_credential_and_a_claimed_record_no_more(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        # A second live token of the same record, as an earlier offer would have left.
        earlier = secrets.token_urlsafe(32)
        await owner_pool.execute(
            "INSERT INTO oid4vci_access_tokens (tenant_id, token_hash, record_id, expires_at)"
            " VALUES ($1, sha256(convert_to($2, 'UTF8')), $3, now() + interval '5 minutes')",
            offered.tenant_id,
            earlier,
            offered.record_id,
        )
        first = await wallet.credential(access_token, wallet.proof(await wallet.nonce()))
        again = await wallet.credential(access_token, wallet.proof(await wallet.nonce()))
        other_key = Wallet(client, offered)
        other = await other_key.credential(earlier, other_key.proof(await other_key.nonce()))
    assert first.status_code == 200, first.text
    for response in (again, other):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert "already used" in response.json()["error_description"]
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def _request(wallet: Wallet, access_token: str, body: dict[str, Any]) -> Any:
    return await wallet.client.post(
        f"/tenants/{wallet.offered.tenant_id}/credential",
        json={"credential_configuration_id": wallet.offered.configuration_id, **body},
        headers={"Authorization": f"Bearer {access_token}"},
    )


async def test_a_singular_proof_of_drafts_13_to_15_is_accepted_and_both_are_refused(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        proof = wallet.proof(await wallet.nonce())
        both = await _request(
            wallet,
            access_token,
            {"proof": {"proof_type": "jwt", "jwt": proof}, "proofs": {"jwt": [proof]}},
        )
        wrong_type = await _request(
            wallet, access_token, {"proof": {"proof_type": "cwt", "cwt": proof}}
        )
        singular = await _request(
            wallet, access_token, {"proof": {"proof_type": "jwt", "jwt": proof}}
        )
    assert both.status_code == 400 and both.json()["error"] == "invalid_credential_request"
    assert wrong_type.status_code == 400 and wrong_type.json()["error"] == "invalid_proof"
    assert singular.status_code == 200, singular.text
    assert singular.json()["credentials"][0]["credential"]


async def test_a_draft_request_names_the_credential_by_format_and_vct(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    vct = f"{PUBLIC_URL}/tenants/{offered.tenant_id}/schemas/{offered.schema_id}/v1"
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()

        async def draft(body: dict[str, Any]) -> Any:
            proof = wallet.proof(await wallet.nonce())
            return await client.post(
                f"/tenants/{offered.tenant_id}/credential",
                json={**body, "proof": {"proof_type": "jwt", "jwt": proof}},
                headers={"Authorization": f"Bearer {access_token}"},
            )

        other_type = await draft({"format": "vc+sd-jwt", "vct": vct + "0"})
        other_format = await draft({"format": "jwt_vc_json", "vct": vct})
        no_vct = await draft({"format": "vc+sd-jwt"})
        named = await draft({"format": "vc+sd-jwt", "vct": vct})
    assert other_type.status_code == 400
    assert other_type.json()["error"] == "unknown_credential_configuration"
    for refused in (other_format, no_vct):
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_credential_request"
        assert "format" in refused.json()["error_description"]
    assert named.status_code == 200, named.text
    assert named.json()["credentials"][0]["credential"]


async def test_a_proof_key_without_x_or_y_is_an_invalid_proof(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        responses = []
        for missing in ("x", "y"):
            jwk = {k: v for k, v in wallet.jwk.items() if k != missing}
            proof = wallet.proof(await wallet.nonce(), header_jwk=jwk)
            responses.append(await wallet.credential(access_token, proof))
    for response in responses:
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_proof"
        assert "coordinate" in response.json()["error_description"]


async def test_forged_and_other_tenants_nonces_are_invalid(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    elsewhere = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        forged = Nonces(b"x" * 32).issue(offered.tenant_id, time.time())
        other_tenants = await Wallet(client, elsewhere).nonce()
        future = Nonces(NONCE_KEY).issue(offered.tenant_id, time.time() + 3600)
        responses = [
            await wallet.credential(access_token, wallet.proof(nonce))
            for nonce in (forged, other_tenants, future, "!" * 500)
        ]
        good = await wallet.credential(access_token, wallet.proof(await wallet.nonce()))
    for response in responses:
        assert response.status_code == 400 and response.json()["error"] == "invalid_nonce"
    assert good.status_code == 200, good.text


class _NoDatabase:
    """A pool that fails any use: the nonce endpoint must answer without one."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was used ({name})")


async def test_a_nonce_costs_no_database_call() -> None:
    app = create_app(_NoDatabase(), PUBLIC_URL, rate=1000.0, burst=1000, nonce_key=NONCE_KEY)
    tenant = "5f0c4a52-0000-4000-8000-000000000001"
    async with client_of(app) as client:
        responses = [await client.post(f"/tenants/{tenant}/nonce") for _ in range(3)]
    nonces = {r.json()["c_nonce"] for r in responses}
    assert [r.status_code for r in responses] == [200] * 3 and len(nonces) == 3
    assert responses[0].headers["cache-control"] == "no-store"


async def test_of_two_concurrent_requests_with_one_access_token_one_gets_the_credential(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallets = [Wallet(client, offered), Wallet(client, offered)]
        access_token = await wallets[0].access_token()
        proofs = [w.proof(await w.nonce()) for w in wallets]
        responses = await asyncio.gather(
            *(w.credential(access_token, p) for w, p in zip(wallets, proofs, strict=True))
        )
    assert sorted(r.status_code for r in responses) == [200, 401]
