"""OID4VCI pre-authorized code flow: metadata, offer, token, nonce and credential endpoints."""

from __future__ import annotations

import time
import uuid

import asyncpg
from cryptography.hazmat.primitives.asymmetric import ec

from credbatch.signing import sd_jwt
from credbatch.tenancy import service_scope, tenant_transaction
from tests.services.public.oid4vci_world import (
    PUBLIC_URL,
    Wallet,
    client_of,
    offer_one,
    oid4vci_app,
)


async def test_metadata_is_served_at_the_exact_well_known_urls(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    tenant, issuer = offered.tenant_id, offered.issuer
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        inserted = await client.get(f"/.well-known/openid-credential-issuer/tenants/{tenant}")
        appended = await client.get(f"/tenants/{tenant}/.well-known/openid-credential-issuer")
        server = await client.get(f"/.well-known/oauth-authorization-server/tenants/{tenant}")
        unknown = await client.get(f"/.well-known/openid-credential-issuer/tenants/{uuid.uuid4()}")
        malformed = await client.get("/.well-known/openid-credential-issuer/tenants/nope")
        jwt_vc = await client.get(f"/.well-known/jwt-vc-issuer/tenants/{tenant}")
    assert inserted.status_code == appended.status_code == server.status_code == 200
    assert unknown.status_code == malformed.status_code == 404
    metadata = inserted.json()
    assert metadata == appended.json()
    assert metadata["credential_issuer"] == issuer == f"{PUBLIC_URL}/tenants/{tenant}"
    assert metadata["credential_endpoint"] == f"{issuer}/credential"
    assert metadata["nonce_endpoint"] == f"{issuer}/nonce"
    configuration = metadata["credential_configurations_supported"][offered.configuration_id]
    assert configuration["format"] == "dc+sd-jwt"
    assert configuration["vct"] == f"{issuer}/schemas/{offered.schema_id}/v1"
    assert configuration["cryptographic_binding_methods_supported"] == ["jwk"]
    assert configuration["proof_types_supported"] == {
        "jwt": {"proof_signing_alg_values_supported": ["ES256"]}
    }
    assert [c["path"] for c in configuration["credential_metadata"]["claims"]] == [["name"]]
    assert configuration["credential_metadata"]["display"][0]["name"]
    authorization = server.json()
    assert authorization["issuer"] == issuer
    assert authorization["token_endpoint"] == f"{issuer}/token"
    assert authorization["pre-authorized_grant_anonymous_access_supported"] is True
    assert jwt_vc.json()["issuer"] == issuer


async def test_the_offer_names_its_configuration_and_asks_for_the_sms_code(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    assert offered.link.offer_url.startswith("openid-credential-offer://?credential_offer_uri=")
    assert offered.link.tx_code is not None and len(offered.link.tx_code) == 6
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        response = await client.get(offered.offer_path)
    assert response.status_code == 200
    offer = response.json()
    assert offer["credential_issuer"] == offered.issuer
    assert offer["credential_configuration_ids"] == [offered.configuration_id]
    grant = offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    assert grant["pre-authorized_code"] == offered.code
    assert grant["tx_code"] == {
        "input_mode": "numeric",
        "length": 6,
        "description": "The code sent to you by SMS",
    }


async def test_a_single_medium_offer_asks_no_code(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool, mediums=("EMAIL",))
    assert offered.link.tx_code is None
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        offer = (await client.get(offered.offer_path)).json()
        wallet = Wallet(client, offered)
        with_code = await wallet.token(tx_code="123456")
        granted = await wallet.token()
    grant = offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    assert "tx_code" not in grant
    assert with_code.status_code == 400 and with_code.json()["error"] == "invalid_request"
    assert granted.status_code == 200 and granted.json()["token_type"] == "Bearer"


async def test_the_wallet_receives_a_credential_bound_to_its_key(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        response = await wallet.credential(access_token, wallet.proof(await wallet.nonce()))
        jwks = (await client.get(f"/.well-known/jwt-vc-issuer/tenants/{offered.tenant_id}")).json()
    assert response.status_code == 200, response.text
    (entry,) = response.json()["credentials"]
    verified = sd_jwt.verify(entry["credential"], jwks["jwks"]["keys"])
    assert verified.payload["cnf"] == {"jwk": wallet.jwk}
    assert verified.payload["iss"] == offered.issuer
    assert verified.payload["vct"] == f"{offered.issuer}/schemas/{offered.schema_id}/v1"
    assert verified.payload["status"]["status_list"]["idx"] == offered.index
    assert verified.disclosed == {"name": "Ada"}
    # Only the attributes are selectively disclosable.
    assert {"iss", "vct", "cnf", "status", "iat"} <= set(verified.payload)
    state = await _record_state(app_pool, offered.tenant_id, offered.record_id)
    assert state == ("CLAIMED", True)


async def _record_state(
    app_pool: asyncpg.Pool, tenant_id: uuid.UUID, record_id: uuid.UUID
) -> tuple[str, bool]:
    async with tenant_transaction(app_pool, service_scope(tenant_id), readonly=True) as conn:
        row = await conn.fetchrow(
            "SELECT state, claimed_at IS NOT NULL AS claimed FROM records"
            " WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            record_id,
        )
    assert row is not None
    return row["state"], row["claimed"]


async def test_a_pre_authorized_code_is_exchanged_once(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        await wallet.access_token()
        again = await wallet.token(tx_code=offered.link.tx_code)
        offer_after = await client.get(offered.offer_path)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert offer_after.status_code == 404


async def test_an_expired_pre_authorized_code_is_refused(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool, offer_ttl=1)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        time.sleep(1.2)
        response = await wallet.token(tx_code=offered.link.tx_code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_wrong_or_missing_tx_codes_and_the_five_attempt_limit(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    right = offered.link.tx_code
    assert right is not None
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        missing = await wallet.token()
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        for _ in range(5):
            response = await wallet.token(tx_code=wrong)
            assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
        # The right code no longer helps: the offer is spent.
        late = await wallet.token(tx_code=right)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


async def test_four_wrong_codes_leave_the_offer_usable(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        for _ in range(4):
            assert (await wallet.token(tx_code="000000x")).status_code == 400
        assert (await wallet.token(tx_code=offered.link.tx_code)).status_code == 200


async def test_another_tenants_offer_and_token_are_not_found(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    first = await offer_one(app_pool)
    second = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        # The first tenant's code at the second tenant's endpoints.
        offer = await client.get(f"/tenants/{second.tenant_id}/offers/{first.code}")
        response = await client.post(
            f"/tenants/{second.tenant_id}/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
                "pre-authorized_code": first.code,
                "tx_code": first.link.tx_code or "",
            },
        )
        wallet = Wallet(client, first)
        access_token = await wallet.access_token()
        other = Wallet(client, second)
        crossed = await other.credential(access_token, other.proof(await other.nonce()))
    assert offer.status_code == 404
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert crossed.status_code == 401 and crossed.json()["error"] == "invalid_token"
    assert crossed.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_token_requests_must_be_well_formed(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    path = f"/tenants/{offered.tenant_id}/token"
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        as_json = await client.post(path, json={"grant_type": "x"})
        other_grant = await client.post(path, data={"grant_type": "authorization_code"})
        no_code = await client.post(
            path, data={"grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code"}
        )
    assert as_json.json()["error"] == "invalid_request"
    assert other_grant.json()["error"] == "unsupported_grant_type"
    assert no_code.json()["error"] == "invalid_request"
    assert {as_json.status_code, other_grant.status_code, no_code.status_code} == {400}


async def test_bad_proofs_are_refused(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        stranger = ec.generate_private_key(ec.SECP256R1())
        cases = {
            "wrong aud": wallet.proof(await wallet.nonce(), aud=f"{PUBLIC_URL}/tenants/x"),
            "wrong typ": wallet.proof(await wallet.nonce(), typ="JWT"),
            "other key signed": wallet.proof(await wallet.nonce(), signer=stranger),
            "old iat": wallet.proof(await wallet.nonce(), iat=time.time() - 3600),
            "no nonce": wallet.proof(None),
        }
        for name, proof in cases.items():
            response = await wallet.credential(access_token, proof)
            assert response.status_code == 400, name
            assert response.json()["error"] == "invalid_proof", name
        missing = await client.post(
            f"/tenants/{offered.tenant_id}/credential",
            json={"credential_configuration_id": offered.configuration_id},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        unknown = await wallet.credential(
            access_token, wallet.proof(await wallet.nonce()), configuration_id="nope"
        )
        no_token = await client.post(f"/tenants/{offered.tenant_id}/credential", json={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_proof"
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "unknown_credential_configuration"
    assert no_token.status_code == 401 and no_token.json()["error"] == "invalid_token"
    assert await _record_state(app_pool, offered.tenant_id, offered.record_id) == (
        "INVITED",
        False,
    )


async def test_stale_made_up_or_replayed_nonces_are_refused(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        made_up = await wallet.credential(access_token, wallet.proof("not-a-nonce-we-issued"))
        nonce = await wallet.nonce()
        first = await wallet.credential(access_token, wallet.proof(nonce))
        replayed = await wallet.credential(access_token, wallet.proof(nonce))
        stale_nonce = await wallet.nonce()
        async with tenant_transaction(app_pool, service_scope(offered.tenant_id)) as conn:
            await conn.execute(
                "UPDATE oid4vci_nonces SET expires_at = now() - interval '1 second'"
                " WHERE tenant_id = $1 AND used_at IS NULL",
                offered.tenant_id,
            )
        stale = await wallet.credential(access_token, wallet.proof(stale_nonce))
    assert first.status_code == 200
    for response in (made_up, replayed, stale):
        assert response.status_code == 400 and response.json()["error"] == "invalid_nonce"


async def test_download_batches_keep_the_bearer_download_and_wallet_ones_close_it(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    wallet_batch = await offer_one(app_pool)
    download_batch = await offer_one(app_pool, claim_mode="DOWNLOAD")
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        tokens = {}
        for offered in (wallet_batch, download_batch):
            scope = service_scope(offered.tenant_id)
            async with tenant_transaction(app_pool, scope, readonly=True) as conn:
                tokens[offered.tenant_id] = await conn.fetchval(
                    "SELECT claim_token FROM credentials WHERE tenant_id = $1",
                    offered.tenant_id,
                )
        closed = await client.get(f"/claim/{tokens[wallet_batch.tenant_id]}/credential")
        kept = await client.get(f"/claim/{tokens[download_batch.tenant_id]}/credential")
        no_offer = await client.get(download_batch.offer_path)
    assert closed.status_code == 410
    assert kept.status_code == 200
    assert no_offer.status_code == 404
