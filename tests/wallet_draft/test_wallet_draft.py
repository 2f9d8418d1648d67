"""A wallet of an earlier OpenID4VCI draft takes a credential from the running public app.

Beside ``tests/wallet`` (OpenID4VCI 1.0), ``wallet.mjs`` runs the pre-authorized flow with
Sphereon's client on draft 13 (pinned in ``package-lock.json``, installed by
``make wallet-draft-deps``): it finds the authorization server's metadata at the well-known
path appended to the issuer, sends the transaction code, and requests the credential with a
singular ``proof``. The public app and the signer listen on real loopback ports, as deployed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from credbatch.signing.keys import KeyRing
from credbatch.tenancy import service_scope, tenant_transaction
from services.public.app import create_app
from services.public.signer_client import SignerClient
from services.signer.app import create_signer_app
from tests.services.public.oid4vci_world import KEK, SIGNER_TOKEN, offer_one
from tests.wallet.test_wallet import _listening, _serving, _url

ROOT = Path(__file__).resolve().parents[2]
WALLET = ROOT / "tests" / "wallet_draft" / "wallet.mjs"


@pytest.fixture(scope="module", autouse=True)
def wallet_draft_deps() -> None:
    """The pinned library, installed once (make skips an up-to-date install)."""
    assert shutil.which("node"), "the wallet test needs Node.js (node) on PATH"
    subprocess.run(["make", "-s", "wallet-draft-deps"], cwd=ROOT, check=True, timeout=300)


async def _run_wallet(offer_link: str, tx_code: str | None) -> dict[str, Any]:
    args = [str(WALLET), offer_link] + ([tx_code] if tx_code else [])
    process = await asyncio.create_subprocess_exec(
        "node", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert stdout, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    assert process.returncode == 0 and result["step"] == "done", (result, stderr.decode()[-2000:])
    return result


@pytest.mark.parametrize("mediums", [("EMAIL", "SMS"), ("EMAIL",)], ids=["tx_code", "no_tx_code"])
async def test_a_draft_13_wallet_claims_a_credential(
    app_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
    mediums: tuple[str, ...],
) -> None:
    public_sock, signer_sock = _listening(), _listening()
    public_url = _url(public_sock)
    offered = await offer_one(app_pool, public_url=public_url, mediums=mediums)
    assert (offered.link.tx_code is not None) == ("SMS" in mediums)
    keys = KeyRing(signer_pool, KEK, signer=True)
    signer_app = create_signer_app(signer_pool, keys, SIGNER_TOKEN)
    async with (
        _serving(signer_app, signer_sock),
        httpx.AsyncClient(base_url=_url(signer_sock)) as signer_http,
    ):
        signer = SignerClient(signer_http, SIGNER_TOKEN)
        public_app = create_app(public_pool, public_url, rate=1000.0, burst=1000, signer=signer)
        async with _serving(public_app, public_sock):
            result = await _run_wallet(offered.link.offer_url, offered.link.tx_code)

    issuer = f"{public_url}/tenants/{offered.tenant_id}"
    # The library found the authorization server's metadata at the appended well-known path
    # (it tries openid-configuration first and says so), and the token endpoint in it.
    assert result["authorization_server_type"] == "OIDC"
    assert result["token_endpoint"] == f"{issuer}/token"
    assert result["iss"] == issuer
    assert result["vct"] == f"{issuer}/schemas/{offered.schema_id}/v1"
    assert result["cnf_matches_wallet_key"] is True
    async with tenant_transaction(app_pool, service_scope(offered.tenant_id)) as conn:
        state = await conn.fetchval(
            "SELECT state FROM records WHERE tenant_id = $1 AND id = $2",
            offered.tenant_id,
            offered.record_id,
        )
    assert state == "CLAIMED"
