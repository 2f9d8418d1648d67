"""The signer signs only what a wallet was granted: the shared token alone signs nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from credbatch.signing.keys import KeyRing
from services.signer.app import create_signer_app
from services.signer.protocol import BOUND_CREDENTIALS_PATH
from tests.services.public.oid4vci_world import (
    KEK,
    SIGNER_TOKEN,
    Offered,
    Wallet,
    client_of,
    offer_one,
    oid4vci_app,
)


def _signer(signer_pool: asyncpg.Pool) -> httpx.AsyncClient:
    app = create_signer_app(signer_pool, KeyRing(signer_pool, KEK, signer=True), SIGNER_TOKEN)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signer")


async def _sign(
    signer: httpx.AsyncClient,
    wallet: Wallet,
    access_token: str,
    *,
    tenant_id: uuid.UUID | None = None,
    record_id: uuid.UUID | None = None,
    shared: str = SIGNER_TOKEN,
) -> httpx.Response:
    body: dict[str, Any] = {
        "tenant_id": str(tenant_id or wallet.offered.tenant_id),
        "record_id": str(record_id or wallet.offered.record_id),
        "access_token": access_token,
        "holder_jwk": wallet.jwk,
    }
    headers = {"Authorization": f"Bearer {shared}"}
    return await signer.post(BOUND_CREDENTIALS_PATH, json=body, headers=headers)


async def _state(owner_pool: asyncpg.Pool, offered: Offered) -> str:
    state: str = await owner_pool.fetchval(
        "SELECT state FROM records WHERE id = $1", offered.record_id
    )
    return state


async def test_a_live_grant_signs_once_and_claims_the_record(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    async with (
        client_of(oid4vci_app(public_pool, signer_pool)) as client,
        _signer(signer_pool) as signer,
    ):
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        wrong_shared = await _sign(signer, wallet, access_token, shared="not-the-token")
        assert wrong_shared.status_code == 401
        assert await _state(owner_pool, offered) == "INVITED"
        first = await _sign(signer, wallet, access_token)
        replay = await _sign(signer, wallet, access_token)
    assert first.status_code == 200 and isinstance(first.json()["credential"], str)
    assert replay.status_code == 403 and replay.json() == {"error": "no_grant"}
    assert await _state(owner_pool, offered) == "CLAIMED"


async def test_the_shared_token_without_a_live_grant_signs_nothing(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    neighbour = await offer_one(app_pool, tenant_id=offered.tenant_id)
    stranger = await offer_one(app_pool)
    async with (
        client_of(oid4vci_app(public_pool, signer_pool)) as client,
        _signer(signer_pool) as signer,
    ):
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        stranger_token = await Wallet(client, stranger).access_token()
        expired_wallet = Wallet(client, neighbour)
        expired_token = await expired_wallet.access_token()
        await owner_pool.execute(
            "UPDATE oid4vci_access_tokens SET expires_at = now() - interval '1 second'"
            " WHERE tenant_id = $1 AND record_id = $2",
            neighbour.tenant_id,
            neighbour.record_id,
        )
        refused = {
            "no grant": await _sign(signer, wallet, "made-up-access-token"),
            "expired grant": await _sign(signer, expired_wallet, expired_token),
            "another record's grant": await _sign(
                signer, wallet, access_token, record_id=neighbour.record_id
            ),
            "another tenant's grant": await _sign(signer, wallet, stranger_token),
            "another tenant's grant for its record": await _sign(
                signer, wallet, stranger_token, record_id=stranger.record_id
            ),
        }
        # None of those spent the wallet's own grant.
        own = await _sign(signer, wallet, access_token)
    for name, response in refused.items():
        assert response.status_code == 403, name
    assert own.status_code == 200
    assert await _state(owner_pool, neighbour) == "INVITED"
    assert await _state(owner_pool, stranger) == "INVITED"


async def test_a_signing_error_rolls_back_and_leaves_the_grant_usable(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    stored = await owner_pool.fetchval(
        "SELECT sd_jwt FROM credentials WHERE record_id = $1", offered.record_id
    )
    corrupt = "UPDATE credentials SET sd_jwt = $2 WHERE record_id = $1"
    async with (
        client_of(oid4vci_app(public_pool, signer_pool)) as client,
        _signer(signer_pool) as signer,
    ):
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        await owner_pool.execute(corrupt, offered.record_id, "not-an-sd-jwt~")
        failed = await _sign(signer, wallet, access_token)
        used_after_failure = await owner_pool.fetchval(
            "SELECT used_at FROM oid4vci_access_tokens WHERE record_id = $1", offered.record_id
        )
        state_after_failure = await _state(owner_pool, offered)
        await owner_pool.execute(corrupt, offered.record_id, stored)
        retried = await _sign(signer, wallet, access_token)
    assert failed.status_code == 500 and failed.json() == {"error": "signing failed"}
    assert used_after_failure is None and state_after_failure == "INVITED"
    assert retried.status_code == 200


async def test_of_concurrent_requests_with_one_grant_one_signs(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    async with (
        client_of(oid4vci_app(public_pool, signer_pool)) as client,
        _signer(signer_pool) as signer,
    ):
        wallets = [Wallet(client, offered) for _ in range(4)]
        access_token = await wallets[0].access_token()
        responses = await asyncio.gather(*(_sign(signer, w, access_token) for w in wallets))
    assert sorted(r.status_code for r in responses) == [200, 403, 403, 403]
    # The record was claimed once: its batch counts one CLAIMED record, not four.
    claimed = await owner_pool.fetchval(
        "SELECT sum(n) FROM batch_count_deltas WHERE tenant_id = $1 AND state = 'CLAIMED'",
        offered.tenant_id,
    )
    assert claimed == 1 and await _state(owner_pool, offered) == "CLAIMED"
