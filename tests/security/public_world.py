"""What the public endpoints serve, arranged as the issuance worker leaves it.

The worker side (KeyRing, signer, allocator) runs in the test process as the application
role; the public side gets only a pool of the public endpoints' role or, in a subprocess,
only that role's URL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from starlette.applications import Starlette

from credbatch.signing import opaque, sd_jwt
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import StatusAllocator, list_uri
from credbatch.signing.status_tokens import StatusTokenSigner
from credbatch.tenancy import SERVICE_USER, service_scope, tenant_transaction
from services.public.app import create_app
from tests.fixtures.batches import insert_batch
from tests.fixtures.database import insert_row

PUBLIC_URL = "http://public.test"
KEK = b"security-tests-kek-32-bytes-long"


@dataclass(frozen=True)
class Issued:
    """One issued credential of a fresh tenant, with its certificate and status entry."""

    tenant_id: uuid.UUID
    list_id: uuid.UUID
    index: int
    claim_token: str
    certificate_id: str

    @property
    def list_path(self) -> str:
        return f"/tenants/{self.tenant_id}/statuslists/{self.list_id}"

    @property
    def metadata_path(self) -> str:
        return f"/.well-known/jwt-vc-issuer/tenants/{self.tenant_id}"


def worker_side(app_pool: asyncpg.Pool, ttl: int = 300) -> tuple[KeyRing, StatusTokenSigner]:
    keys = KeyRing(app_pool, KEK)
    return keys, StatusTokenSigner(app_pool, keys, PUBLIC_URL, ttl_seconds=ttl)


async def issue_one(
    app_pool: asyncpg.Pool,
    keys: KeyRing,
    signer: StatusTokenSigner,
    *,
    claim_expires_in: timedelta = timedelta(days=30),
    claim_mode: str = "DOWNLOAD",
) -> Issued:
    """A credential issued the way the worker does it: entry, signed list token, SD-JWT; of a
    download batch unless ``claim_mode`` says otherwise."""
    tenant = uuid.uuid4()
    allocator = StatusAllocator(app_pool, block=8, list_size=64, publisher=signer)
    (entry,) = await allocator.take(tenant, 1)
    key = await keys.active_key(tenant)
    certificate_id = opaque.new_id(tenant)
    claims = {
        "iss": f"{PUBLIC_URL}/tenants/{tenant}",
        "iat": int(time.time()),
        "vct": "urn:credbatch:test",
        "status": {
            "status_list": {"idx": entry.index, "uri": list_uri(PUBLIC_URL, tenant, entry.list_id)}
        },
    }
    credential = sd_jwt.issue(
        key=key.private_key,
        kid=key.kid,
        claims=claims,
        disclosable={"name": "Ada", "Cred_URL": f"{PUBLIC_URL}/c/{certificate_id}"},
    )
    claim_token = opaque.new_id(tenant)
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        # A download batch by default: the world serves every public route, the bearer
        # download included.
        arranged = await insert_batch(
            conn, tenant, creator=SERVICE_USER, states=("ISSUED",), claim_mode=claim_mode
        )
        batch_id, (record_id,) = arranged.batch_id, arranged.record_ids
        await insert_row(
            conn,
            "credentials",
            {
                "tenant_id": tenant,
                "id": uuid.uuid4(),
                "record_id": record_id,
                "batch_id": batch_id,
                "kid": key.kid,
                "status_list_id": entry.list_id,
                "status_index": entry.index,
                "sd_jwt": credential,
                "claim_token": claim_token,
                "claim_expires_at": datetime.now(UTC) + claim_expires_in,
            },
        )
        await insert_row(
            conn,
            "certificates",
            {
                "tenant_id": tenant,
                "id": certificate_id,
                "record_id": record_id,
                "pdf": b"%PDF-1.7 test",
            },
        )
    return Issued(tenant, entry.list_id, entry.index, claim_token, certificate_id)


def public_app(public_pool: asyncpg.Pool, *, rate: float = 1000.0, burst: int = 1000) -> Starlette:
    """The public application on ``public_pool`` (the public endpoints' role)."""
    return create_app(public_pool, PUBLIC_URL, rate=rate, burst=burst)


def client_of(app: Starlette, address: str = "198.51.100.7") -> httpx.AsyncClient:
    """An HTTP client reaching ``app`` from ``address`` (the remote address it sees)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)
