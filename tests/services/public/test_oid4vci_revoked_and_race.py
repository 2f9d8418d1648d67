"""A revoked record is gone at every door; a wallet faster than the worker keeps CLAIMED."""

from __future__ import annotations

import uuid

import asyncpg

from tests.services.public.oid4vci_world import Wallet, client_of, offer_one, oid4vci_app
from workers.issuance.outcome_repository import WRITE_OUTCOMES


async def _set_state(owner_pool: asyncpg.Pool, record_id: uuid.UUID, state: str) -> None:
    revoked = state == "REVOKED"
    await owner_pool.execute(
        "UPDATE records SET state = $2,"
        " revoke_reason = CASE WHEN $3 THEN 'test' END,"
        " revoked_at = CASE WHEN $3 THEN now() END WHERE id = $1",
        record_id,
        state,
        revoked,
    )


async def _record(owner_pool: asyncpg.Pool, record_id: uuid.UUID) -> asyncpg.Record:
    row = await owner_pool.fetchrow(
        "SELECT state, invited_at, claimed_at, error_code FROM records WHERE id = $1", record_id
    )
    assert row is not None
    return row


async def test_a_revoked_download_answers_410(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool, claim_mode="DOWNLOAD")
    token = await owner_pool.fetchval(
        "SELECT claim_token FROM credentials WHERE record_id = $1", offered.record_id
    )
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        assert (await client.get(f"/claim/{token}/credential")).status_code == 200
        await _set_state(owner_pool, offered.record_id, "REVOKED")
        gone = await client.get(f"/claim/{token}/credential")
    assert gone.status_code == 410
    assert "revoked" in gone.text


async def test_a_revoked_offer_answers_410_and_its_code_buys_no_token(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        assert (await client.get(offered.offer_path)).status_code == 200
        await _set_state(owner_pool, offered.record_id, "REVOKED")
        offer = await client.get(offered.offer_path)
        token = await Wallet(client, offered).token(tx_code=offered.link.tx_code)
    assert offer.status_code == 410 and offer.json()["error"] == "revoked"
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    # The refused exchange did not spend the offer: nothing but the revocation stopped it.
    used = await owner_pool.fetchval(
        "SELECT used_at FROM oid4vci_offers WHERE record_id = $1", offered.record_id
    )
    assert used is None


async def test_an_access_token_taken_before_revocation_gets_no_credential(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        await _set_state(owner_pool, offered.record_id, "REVOKED")
        response = await wallet.credential(access_token, wallet.proof(await wallet.nonce()))
    assert response.status_code == 400
    assert response.json()["error"] == "credential_request_denied"
    assert (await _record(owner_pool, offered.record_id))["state"] == "REVOKED"


async def test_a_wallet_claiming_before_the_outcome_write_stays_claimed(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    # The worker stored the offer and sent the invitation, but has not written the outcome.
    offered = await offer_one(app_pool, state="ISSUED")
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
        response = await wallet.credential(access_token, wallet.proof(await wallet.nonce()))
    assert response.status_code == 200, response.text
    claimed = await _record(owner_pool, offered.record_id)
    assert claimed["state"] == "CLAIMED" and claimed["claimed_at"] is not None

    # Now the worker's outcome arrives: INVITED, both messages sent.
    await owner_pool.execute(
        WRITE_OUTCOMES,
        offered.tenant_id,
        [offered.record_id],
        ["INVITED"],
        [True],
        [True],
        [None],
        [None],
        [1],
        86400.0,  # a reminder "day"; the batch has no reminder days
    )
    after = await _record(owner_pool, offered.record_id)
    assert after["state"] == "CLAIMED"
    assert after["invited_at"] is None and after["error_code"] is None
    sent = await owner_pool.fetchrow(
        "SELECT email_sent_at, sms_sent_at FROM records WHERE id = $1", offered.record_id
    )
    assert sent is not None and sent["email_sent_at"] is not None
