"""A record issued and offered the way the issuance worker leaves it, and a wallet for it.

The worker side (key ring, status allocator, offer codes) runs in the test process with a
test KEK, as the application role; the public application gets a pool of the public
endpoints' role and a signer, reached in-process, on a pool of the signer's role.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from credbatch.offer_links import offer_link
from credbatch.signing import opaque, sd_jwt
from credbatch.signing.jose import public_jwk, sign_compact
from credbatch.signing.keys import KeyRing
from credbatch.signing.offer_codes import OfferCodes, pre_authorized_code
from credbatch.signing.status_list import StatusAllocator, list_uri
from credbatch.signing.status_tokens import StatusTokenSigner
from credbatch.tenancy import SERVICE_USER, service_scope, tenant_transaction
from services.public.app import create_app
from services.public.signer_client import SignerClient
from services.signer.app import create_signer_app
from tests.fixtures.batches import insert_batch
from tests.fixtures.database import insert_row
from workers.issuance.context import load_context
from workers.issuance.offers import OfferLink, Offers

PUBLIC_URL = "http://public.test"
KEK = b"oid4vci-tests-kek-32-bytes-long!"
SIGNER_TOKEN = "oid4vci-tests-signer-token"
NONCE_KEY = b"oid4vci-tests-nonce-key-32-bytes!"
PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


@dataclass(frozen=True)
class Offered:
    """One INVITED record of a fresh tenant, its stored credential and its offer."""

    tenant_id: uuid.UUID
    record_id: uuid.UUID
    schema_id: uuid.UUID
    link: OfferLink
    index: int

    @property
    def issuer(self) -> str:
        return f"{PUBLIC_URL}/tenants/{self.tenant_id}"

    @property
    def offer_path(self) -> str:
        uri = parse_qs(urlparse(self.link.offer_url).query)["credential_offer_uri"][0]
        assert uri.startswith(PUBLIC_URL)
        return uri[len(PUBLIC_URL) :]

    @property
    def code(self) -> str:
        return self.offer_path.rsplit("/", 1)[1]

    @property
    def configuration_id(self) -> str:
        return f"{self.schema_id}_v1"


async def offer_one(
    app_pool: asyncpg.Pool,
    *,
    mediums: tuple[str, ...] = ("EMAIL", "SMS"),
    claim_mode: str = "OID4VCI",
    offer_ttl: int = 3600,
    tenant_id: uuid.UUID | None = None,
    public_url: str = PUBLIC_URL,
    state: str = "INVITED",
    schema_id: uuid.UUID | None = None,
) -> Offered:
    tenant = tenant_id or uuid.uuid4()
    keys = KeyRing(app_pool, KEK)
    signer = StatusTokenSigner(app_pool, keys, public_url, ttl_seconds=300)
    allocator = StatusAllocator(app_pool, block=8, list_size=64, publisher=signer)
    (entry,) = await allocator.take(tenant, 1)
    key = await keys.active_key(tenant)
    offers = Offers(OfferCodes(KEK), offer_ttl)
    claim_token = opaque.new_id(tenant)
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        arranged = await insert_batch(
            conn,
            tenant,
            schema_id,
            creator=SERVICE_USER,
            states=(state,),
            mediums=mediums,
            claim_mode=claim_mode,
        )
        context = await load_context(conn, tenant, arranged.batch_id, public_url)
        assert context is not None
        (record_id,) = arranged.record_ids
        claims = {
            "iss": context.issuer,
            "iat": int(time.time()),
            "vct": context.vct,
            "vct#integrity": context.vct_integrity,
            "status": {
                "status_list": {
                    "idx": entry.index,
                    "uri": list_uri(public_url, tenant, entry.list_id),
                }
            },
        }
        credential = sd_jwt.issue(
            key=key.private_key, kid=key.kid, claims=claims, disclosable={"name": "Ada"}
        )
        await insert_row(
            conn,
            "credentials",
            {
                "tenant_id": tenant,
                "id": uuid.uuid4(),
                "record_id": record_id,
                "batch_id": arranged.batch_id,
                "kid": key.kid,
                "status_list_id": entry.list_id,
                "status_index": entry.index,
                "sd_jwt": credential,
                "claim_token": claim_token,
                "claim_expires_at": datetime.now(UTC) + timedelta(days=30),
            },
        )
        await offers.store(conn, tenant, [(record_id, claim_token, context)])
    # A download batch has no offer; its would-be link must then lead nowhere.
    link = offers.link(context, record_id, claim_token) or OfferLink(
        offer_url=offer_link(context.issuer, pre_authorized_code(tenant, claim_token)),
        tx_code=None,
    )
    return Offered(tenant, record_id, arranged.schema_id, link, entry.index)


def oid4vci_app(public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool) -> Starlette:
    """The public application as deployed: each side on its own role's pool."""
    keys = KeyRing(signer_pool, KEK, signer=True)
    signer_app = create_signer_app(signer_pool, keys, SIGNER_TOKEN)
    transport = httpx.ASGITransport(app=signer_app)
    signer = SignerClient(
        httpx.AsyncClient(transport=transport, base_url="http://signer.test"), SIGNER_TOKEN
    )
    return create_app(
        public_pool, PUBLIC_URL, rate=1000.0, burst=1000, signer=signer, nonce_key=NONCE_KEY
    )


def client_of(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)


class Wallet:
    """A holder's wallet: one P-256 key, and the requests of the pre-authorized flow."""

    def __init__(self, client: httpx.AsyncClient, offered: Offered) -> None:
        self.client = client
        self.offered = offered
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = public_jwk(self.key.public_key())

    async def token(self, code: str | None = None, tx_code: str | None = None) -> httpx.Response:
        form = {"grant_type": PRE_AUTHORIZED, "pre-authorized_code": code or self.offered.code}
        if tx_code is not None:
            form["tx_code"] = tx_code
        return await self.client.post(f"/tenants/{self.offered.tenant_id}/token", data=form)

    async def access_token(self) -> str:
        response = await self.token(tx_code=self.offered.link.tx_code)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def nonce(self) -> str:
        response = await self.client.post(f"/tenants/{self.offered.tenant_id}/nonce")
        assert response.status_code == 200, response.text
        return str(response.json()["c_nonce"])

    def proof(
        self,
        nonce: str | None,
        *,
        aud: str | None = None,
        typ: str = "openid4vci-proof+jwt",
        iat: float | None = None,
        signer: ec.EllipticCurvePrivateKey | None = None,
        header_jwk: dict[str, Any] | None = None,
    ) -> str:
        payload: dict[str, Any] = {
            "aud": aud or self.offered.issuer,
            "iat": int(iat if iat is not None else time.time()),
        }
        if nonce is not None:
            payload["nonce"] = nonce
        header = {"alg": "ES256", "typ": typ, "jwk": header_jwk or self.jwk}
        return sign_compact(header, payload, signer or self.key)

    async def credential(
        self, access_token: str, proof: str, configuration_id: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/tenants/{self.offered.tenant_id}/credential",
            json={
                "credential_configuration_id": configuration_id or self.offered.configuration_id,
                "proofs": {"jwt": [proof]},
            },
            headers={"Authorization": f"Bearer {access_token}"},
        )
