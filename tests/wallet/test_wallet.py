"""A wallet written by others takes a credential from the running public app and signer.

The public app and the signer listen on real loopback ports (uvicorn, as in production), and
``wallet.mjs`` runs the OpenID4VCI pre-authorized code flow and SD-JWT VC verification with
published npm libraries (pinned in ``package-lock.json``, installed by ``make wallet-deps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from credbatch.signing.keys import KeyRing
from credbatch.tenancy import service_scope, tenant_transaction
from credbatch.tenants import profile as profiles
from credbatch.tenants.logo import accept_logo
from credbatch.tenants.profile import TenantProfile
from services.public.app import create_app
from services.public.signer_client import SignerClient
from services.signer.app import create_signer_app
from tests.fixtures.batches import insert_schema
from tests.services.public.oid4vci_world import KEK, SIGNER_TOKEN, offer_one
from tests.tenants.images import PNG_LOGO

ROOT = Path(__file__).resolve().parents[2]
WALLET = ROOT / "tests" / "wallet" / "wallet.mjs"


@pytest.fixture(scope="module", autouse=True)
def wallet_deps() -> None:
    """The pinned wallet libraries, installed once (make skips an up-to-date install)."""
    assert shutil.which("node"), "the wallet test needs Node.js (node) on PATH"
    subprocess.run(["make", "-s", "wallet-deps"], cwd=ROOT, check=True, timeout=300)


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def _serving(app: Starlette, sock: socket.socket) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"http://{host}:{port}"


async def _run_wallet(offer_link: str, tx_code: str | None) -> dict[str, Any]:
    args = [str(WALLET), offer_link] + ([tx_code] if tx_code else [])
    process = await asyncio.create_subprocess_exec(
        "node", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    return result


async def test_a_wallet_of_others_claims_verifies_and_checks_status(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    public_sock, signer_sock = _listening(), _listening()
    public_url = _url(public_sock)
    offered = await offer_one(app_pool, public_url=public_url)
    # Each side on its own role, as deployed.
    keys = KeyRing(signer_pool, KEK, signer=True)
    signer_app = create_signer_app(signer_pool, keys, SIGNER_TOKEN)
    async with (
        _serving(signer_app, signer_sock),
        httpx.AsyncClient(base_url=_url(signer_sock)) as signer_http,
    ):
        signer = SignerClient(signer_http, SIGNER_TOKEN)
        public_app = create_app(public_pool, public_url, rate=1000.0, burst=1000, signer=signer)
        async with _serving(public_app, public_sock):
            assert offered.link.tx_code is not None
            result = await _run_wallet(offered.link.offer_url, offered.link.tx_code)

    issuer = f"{public_url}/tenants/{offered.tenant_id}"
    assert result["credential_verified"] is True
    assert result["iss"] == issuer
    assert result["vct"] == f"{issuer}/schemas/{offered.schema_id}/v1"
    assert result["cnf_matches_wallet_key"] is True
    assert result["key_binding"] is True
    assert result["status"] == "valid"
    assert result["status_index"] == offered.index
    assert result["disclosed"] == {"name": "Ada"}
    async with tenant_transaction(app_pool, service_scope(offered.tenant_id)) as conn:
        state = await conn.fetchval(
            "SELECT state FROM records WHERE tenant_id = $1 AND id = $2",
            offered.tenant_id,
            offered.record_id,
        )
    assert state == "CLAIMED"


async def test_a_wallet_shows_the_issuers_name_and_logo_and_the_claim_labels(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    """The issuer's profile reaches the wallet through its own library: the issuer metadata's
    display, and the type metadata the credential's vct resolves to, its integrity checked."""
    public_sock, signer_sock = _listening(), _listening()
    public_url = _url(public_sock)
    tenant = uuid.uuid4()
    attributes = [
        {
            "name": "name",
            "type": "STRING",
            "required": True,
            "labels": {"de": "Name", "en": "Full name"},
        }
    ]
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        schema_id = await insert_schema(conn, tenant, attributes=attributes)
        await profiles.save(
            conn,
            TenantProfile(
                display_name="Example University",
                localized_display_names={"de": "Beispiel-Universität"},
                logo=accept_logo(PNG_LOGO),
                background_color="#1a4480",
            ),
        )
    offered = await offer_one(
        app_pool, public_url=public_url, tenant_id=tenant, schema_id=schema_id
    )
    keys = KeyRing(signer_pool, KEK, signer=True)
    signer_app = create_signer_app(signer_pool, keys, SIGNER_TOKEN)
    async with (
        _serving(signer_app, signer_sock),
        httpx.AsyncClient(base_url=_url(signer_sock)) as signer_http,
    ):
        signer = SignerClient(signer_http, SIGNER_TOKEN)
        public_app = create_app(public_pool, public_url, rate=1000.0, burst=1000, signer=signer)
        async with _serving(public_app, public_sock), httpx.AsyncClient() as client:
            assert offered.link.tx_code is not None
            result = await _run_wallet(offered.link.offer_url, offered.link.tx_code)
            logo_uri = result["issuer_display"][0]["logo"]["uri"]
            logo = await client.get(logo_uri)
    assert result["credential_verified"] is True
    names = {d["locale"]: d["name"] for d in result["issuer_display"]}
    assert names == {"en": "Example University", "de": "Beispiel-Universität"}
    assert logo.status_code == 200 and logo.content == PNG_LOGO
    assert logo.headers["content-type"] == "image/png"
    assert "immutable" in logo.headers["cache-control"]
    assert result["vct_integrity_checked"] is True
    metadata = result["type_metadata"]
    assert metadata["vct"] == f"{public_url}/tenants/{tenant}/schemas/{schema_id}/v1"
    labels = {d["locale"]: d["label"] for d in metadata["claims"][0]["display"]}
    assert metadata["claims"][0]["path"] == ["name"]
    assert labels == {"en": "Full name", "de": "Name"}
    rendering = {d["locale"]: d["rendering"]["simple"] for d in metadata["display"]}
    assert set(rendering) == {"en", "de"}
    assert rendering["de"]["background_color"] == "#1a4480"
    assert rendering["de"]["text_color"] == "#ffffff"
    assert rendering["en"]["logo"]["uri"] == logo_uri
    assert rendering["en"]["logo"]["alt_text"] == "Example University logo"
