"""A batch whose credentials are issued the way the issuance worker leaves them: a status list
entry each, the list's token signed and stored, an SD-JWT VC and a claim token per record.

The worker side (KeyRing, allocator, signer) runs in the test process with the application
pool; the public side is the ``public_server`` fixture, reached over HTTP.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from credbatch.signing import opaque, sd_jwt
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import StatusAllocator, StatusEntry, get_status, list_uri
from credbatch.signing.status_tokens import StatusTokenSigner
from tests.fixtures.batches import insert_batch
from tests.fixtures.database import insert_row

KEK = b"revocation-tests-kek-32-bytes-ok"
# Records in these states get a credential, as the worker gives them one.
WITH_CREDENTIAL = frozenset({"ISSUED", "INVITED", "CLAIMED"})


@dataclass(frozen=True)
class IssuedRecord:
    record_id: uuid.UUID
    state: str
    credential_id: uuid.UUID | None
    entry: StatusEntry | None
    claim_token: str | None


@dataclass(frozen=True)
class IssuedBatch:
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    creator: str
    records: list[IssuedRecord]


def worker_side(app_pool: asyncpg.Pool, public_url: str) -> tuple[KeyRing, StatusTokenSigner]:
    keys = KeyRing(app_pool, KEK)
    return keys, StatusTokenSigner(app_pool, keys, public_url, ttl_seconds=60)


async def issue_batch(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    keys: KeyRing,
    signer: StatusTokenSigner,
    public_url: str,
    states: Sequence[str],
    *,
    creator: str = "ana",
    mediums: Sequence[str] = ("EMAIL", "SMS"),
    tenant_id: uuid.UUID | None = None,
) -> IssuedBatch:
    """A batch of one record per state; those in WITH_CREDENTIAL have a signed credential.

    Rows are written as the owner (the batch belongs to ``creator``, whom the application
    role's policies would not let the test insert for); keys and lists as the worker does.
    """
    tenant = tenant_id or uuid.uuid4()
    allocator = StatusAllocator(app_pool, block=16, list_size=64, publisher=signer)
    issued = [s in WITH_CREDENTIAL for s in states]
    entries = iter(await allocator.take(tenant, sum(issued)) if any(issued) else [])
    key = await keys.active_key(tenant)
    records: list[IssuedRecord] = []
    async with owner_pool.acquire() as conn, conn.transaction():
        arranged = await insert_batch(
            conn, tenant, creator=creator, states=tuple(states), mediums=mediums
        )
        for record_id, state, has_credential in zip(
            arranged.record_ids, states, issued, strict=True
        ):
            if not has_credential:
                records.append(IssuedRecord(record_id, state, None, None, None))
                continue
            entry = next(entries)
            claims = {
                "iss": f"{public_url}/tenants/{tenant}",
                "iat": int(time.time()),
                "vct": "urn:credbatch:test",
                "status": {
                    "status_list": {
                        "idx": entry.index,
                        "uri": list_uri(public_url, tenant, entry.list_id),
                    }
                },
            }
            credential = sd_jwt.issue(
                key=key.private_key,
                kid=key.kid,
                claims=claims,
                disclosable={"name": "Ada Lovelace", "course": "First Aid"},
            )
            credential_id, claim_token = uuid.uuid4(), opaque.new_id(tenant)
            await insert_row(
                conn,
                "credentials",
                {
                    "tenant_id": tenant,
                    "id": credential_id,
                    "record_id": record_id,
                    "batch_id": arranged.batch_id,
                    "kid": key.kid,
                    "status_list_id": entry.list_id,
                    "status_index": entry.index,
                    "sd_jwt": credential,
                    "claim_token": claim_token,
                    "claim_expires_at": datetime.now(UTC) + timedelta(days=1),
                },
            )
            records.append(IssuedRecord(record_id, state, credential_id, entry, claim_token))
    return IssuedBatch(tenant, arranged.batch_id, creator, records)


def status_of_credential(credential: str, token: str) -> int:
    """The status a verifier reads for ``credential`` from the list ``token`` it fetched."""
    entry = sd_jwt_status(credential)
    payload = jwt_payload(token)
    bits = zlib.decompress(_b64(payload["status_list"]["lst"]))
    return get_status(bits, entry, int(payload["status_list"]["bits"]))


def sd_jwt_status(credential: str) -> int:
    """The ``status.status_list.idx`` of an SD-JWT VC."""
    index: int = jwt_payload(credential.split("~", 1)[0])["status"]["status_list"]["idx"]
    return index


def jwt_payload(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(_b64(token.split(".")[1]))
    return payload


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def served_token(client: httpx.AsyncClient, tenant: uuid.UUID, list_id: uuid.UUID) -> str:
    response = await client.get(f"/tenants/{tenant}/statuslists/{list_id}")
    assert response.status_code == 200, response.text
    return response.text
