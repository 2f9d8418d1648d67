"""The signer process counts each claim (the funnel's last step) once its grant is spent, and
serves what the dashboard reads of it."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time

import asyncpg
import httpx

from credbatch.config import Settings
from services.signer.protocol import BOUND_CREDENTIALS_PATH
from tests.fixtures.observed import assert_serves_what_is_used
from tests.fixtures.processes import free_port, process_env
from tests.fixtures.scrape import find, stop, wait_for_sample
from tests.services.public.oid4vci_world import (
    KEK,
    SIGNER_TOKEN,
    Wallet,
    client_of,
    offer_one,
    oid4vci_app,
)


async def test_a_claim_is_counted_once(
    db_settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
) -> None:
    offered = await offer_one(app_pool)
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet = Wallet(client, offered)
        access_token = await wallet.access_token()
    http_port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.signer"],
        env=process_env(
            db_settings,
            CREDBATCH_KEK=base64.b64encode(KEK).decode(),
            CREDBATCH_SIGNER_PORT=str(http_port),
            CREDBATCH_SIGNER_TOKEN=SIGNER_TOKEN,
            CREDBATCH_METRICS_PORT=str(metrics_port),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    body = {
        "tenant_id": str(offered.tenant_id),
        "record_id": str(offered.record_id),
        "access_token": access_token,
        "holder_jwk": wallet.jwk,
    }
    headers = {"authorization": f"Bearer {SIGNER_TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as signer:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, stop(process)
                try:
                    claimed = await signer.post(
                        BOUND_CREDENTIALS_PATH, json=body, headers=headers, timeout=10
                    )
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "signer never answered"
                    await asyncio.sleep(0.2)
            again = await signer.post(BOUND_CREDENTIALS_PATH, json=body, headers=headers)
        assert (claimed.status_code, again.status_code) == (200, 403), claimed.text
        state = await owner_pool.fetchval(
            "SELECT state FROM records WHERE id = $1", offered.record_id
        )
        assert state == "CLAIMED"
        samples = await wait_for_sample(metrics_port, "credbatch_claims_total")
        # The refused second request claimed nothing.
        assert [s.value for s in find(samples, "credbatch_claims_total")] == [1]
        assert_serves_what_is_used(samples, "signer")
    finally:
        stop(process)
