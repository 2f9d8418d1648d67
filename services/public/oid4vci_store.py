"""The database side of the public OID4VCI endpoints, each query inside the URL's tenant.

The issuer identifier carries the tenant (``/tenants/{tenant}``), so every lookup runs under
that tenant's row-level security: an offer, access token or nonce of one tenant presented at
another's endpoints is simply not found. Secrets are looked up by their SHA-256 digest.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

import asyncpg
import orjson

from credbatch.signing.offer_codes import digest
from credbatch.tenancy import service_scope, tenant_transaction

MAX_TX_CODE_FAILURES = 5
ACCESS_TOKEN_TTL = timedelta(minutes=5)
NONCE_TTL = timedelta(minutes=5)

_CONFIGURATIONS = """
SELECT v.schema_id, v.version, v.attributes, s.display_name
FROM credential_schema_versions v
JOIN credential_schemas s ON s.tenant_id = v.tenant_id AND s.id = v.schema_id
WHERE v.tenant_id = $1 ORDER BY s.display_name, v.schema_id, v.version
"""
# The offer a wallet fetches: only an offer that can still be exchanged is shown (a revoked
# record's offer is found, so that the wallet learns it is gone rather than unknown).
_OFFER = """
SELECT b.schema_id, b.schema_version, o.tx_code_hash IS NOT NULL AS asks_tx_code,
       r.state = 'REVOKED' AS revoked
FROM oid4vci_offers o
JOIN records r ON r.tenant_id = o.tenant_id AND r.id = o.record_id
JOIN batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
WHERE o.tenant_id = $1 AND o.code_hash = $2 AND o.used_at IS NULL AND o.expires_at > now()
  AND o.failed_attempts < $3
"""
# Locked: two exchanges of one code, or two wrong tx codes at once, are serialised here. A
# revoked record's code is spent: revocation may come after the invitation, and no access
# token may follow it.
_LOCK_OFFER = """
SELECT o.record_id, o.tx_code_hash, o.used_at IS NOT NULL OR o.expires_at <= now()
       OR o.failed_attempts >= $3 OR r.state = 'REVOKED' AS spent
FROM oid4vci_offers o
JOIN records r ON r.tenant_id = o.tenant_id AND r.id = o.record_id
WHERE o.tenant_id = $1 AND o.code_hash = $2 FOR UPDATE OF o
"""
_OFFER_EXISTS = """
SELECT EXISTS (SELECT 1 FROM oid4vci_offers WHERE tenant_id = $1 AND code_hash = $2)
"""
_ISSUES = "SELECT EXISTS (SELECT 1 FROM credential_schema_versions WHERE tenant_id = $1)"
_FAILED = """
UPDATE oid4vci_offers SET failed_attempts = failed_attempts + 1
WHERE tenant_id = $1 AND code_hash = $2
"""
_USED = "UPDATE oid4vci_offers SET used_at = now() WHERE tenant_id = $1 AND code_hash = $2"
_INSERT_GRANT = """
INSERT INTO oid4vci_access_tokens (tenant_id, token_hash, record_id, expires_at)
VALUES ($1, $2, $3, now() + $4::interval)
"""
_GRANT = """
SELECT t.record_id, b.schema_id, b.schema_version
FROM oid4vci_access_tokens t
JOIN records r ON r.tenant_id = t.tenant_id AND r.id = t.record_id
JOIN batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
WHERE t.tenant_id = $1 AND t.token_hash = $2 AND t.expires_at > now()
"""
_NEW_NONCE = """
INSERT INTO oid4vci_nonces (tenant_id, nonce_hash, expires_at)
VALUES ($1, $2, now() + $3::interval)
"""
# Spent in the statement that checks it: a nonce passes at most once.
_USE_NONCE = """
UPDATE oid4vci_nonces SET used_at = now()
WHERE tenant_id = $1 AND nonce_hash = $2 AND used_at IS NULL AND expires_at > now()
RETURNING 1
"""
# Expired nonces go when new ones come, so the table holds about one TTL of them.
_PURGE_NONCES = """
DELETE FROM oid4vci_nonces WHERE tenant_id = $1 AND expires_at < now() - $2::interval
"""
# Counts follow by the statement triggers on records. From ISSUED too: the worker stores the
# offer before it writes the record's outcome, so a fast wallet can claim in between; the
# worker's later outcome write leaves a CLAIMED record's state alone.
_CLAIMED = """
UPDATE records SET state = 'CLAIMED', claimed_at = now(), updated_at = now()
WHERE tenant_id = $1 AND id = $2 AND state IN ('ISSUED', 'INVITED')
"""


@dataclass(frozen=True)
class Configuration:
    """One schema version: one credential configuration of the tenant's issuer."""

    schema_id: uuid.UUID
    version: int
    display_name: str
    attributes: list[dict[str, Any]]

    @property
    def id(self) -> str:
        return configuration_id(self.schema_id, self.version)


def configuration_id(schema_id: uuid.UUID, version: int) -> str:
    return f"{schema_id}_v{version}"


@dataclass(frozen=True)
class Offer:
    configuration_id: str
    asks_tx_code: bool
    revoked: bool


class Exchange(Enum):
    """What a token request achieved."""

    GRANTED = "granted"
    UNKNOWN = "unknown"  # no such code, used, expired or locked by wrong tx codes
    TX_CODE_MISSING = "tx_code_missing"
    TX_CODE_UNEXPECTED = "tx_code_unexpected"
    TX_CODE_WRONG = "tx_code_wrong"


@dataclass(frozen=True)
class Grant:
    """The record an access token is good for, and its credential configuration."""

    record_id: uuid.UUID
    configuration_id: str


def _attributes(raw: Any) -> list[dict[str, Any]]:
    value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return [a for a in value if isinstance(a, dict)]


class Oid4vciStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def _tx(self, tenant_id: uuid.UUID, *, readonly: bool = False) -> Any:
        return tenant_transaction(self._pool, service_scope(tenant_id), readonly=readonly)

    async def configurations(self, tenant_id: uuid.UUID) -> list[Configuration]:
        async with self._tx(tenant_id, readonly=True) as conn:
            rows = await conn.fetch(_CONFIGURATIONS, tenant_id)
        return [
            Configuration(
                r["schema_id"], r["version"], r["display_name"], _attributes(r["attributes"])
            )
            for r in rows
        ]

    async def offer(self, tenant_id: uuid.UUID, code: str) -> Offer | None:
        async with self._tx(tenant_id, readonly=True) as conn:
            row = await conn.fetchrow(_OFFER, tenant_id, digest(code), MAX_TX_CODE_FAILURES)
        if row is None:
            return None
        return Offer(
            configuration_id(row["schema_id"], row["schema_version"]),
            row["asks_tx_code"],
            row["revoked"],
        )

    async def exchange(
        self, tenant_id: uuid.UUID, code: str, tx_code: str | None
    ) -> tuple[Exchange, str | None]:
        """Exchange a pre-authorized code (once) for a new access token."""
        code_hash = digest(code)
        # A writing transaction provisions its tenant: look first, read-only, so that codes
        # made up for unknown tenants write nothing.
        async with self._tx(tenant_id, readonly=True) as conn:
            if not await conn.fetchval(_OFFER_EXISTS, tenant_id, code_hash):
                return Exchange.UNKNOWN, None
        async with self._tx(tenant_id) as conn:
            row = await conn.fetchrow(_LOCK_OFFER, tenant_id, code_hash, MAX_TX_CODE_FAILURES)
            if row is None or row["spent"]:
                return Exchange.UNKNOWN, None
            expected = row["tx_code_hash"]
            if expected is None and tx_code is not None:
                return Exchange.TX_CODE_UNEXPECTED, None
            if expected is not None:
                if tx_code is None:
                    return Exchange.TX_CODE_MISSING, None
                if not secrets.compare_digest(bytes(expected), digest(tx_code)):
                    await conn.execute(_FAILED, tenant_id, code_hash)
                    return Exchange.TX_CODE_WRONG, None
            token = secrets.token_urlsafe(32)
            await conn.execute(_USED, tenant_id, code_hash)
            await conn.execute(
                _INSERT_GRANT, tenant_id, digest(token), row["record_id"], ACCESS_TOKEN_TTL
            )
        return Exchange.GRANTED, token

    async def grant(self, tenant_id: uuid.UUID, access_token: str) -> Grant | None:
        async with self._tx(tenant_id, readonly=True) as conn:
            row = await conn.fetchrow(_GRANT, tenant_id, digest(access_token))
        if row is None:
            return None
        return Grant(row["record_id"], configuration_id(row["schema_id"], row["schema_version"]))

    async def new_nonce(self, tenant_id: uuid.UUID) -> str | None:
        """A fresh c_nonce; None when the tenant issues nothing (and nothing is written)."""
        async with self._tx(tenant_id, readonly=True) as conn:
            if not await conn.fetchval(_ISSUES, tenant_id):
                return None
        nonce = secrets.token_urlsafe(32)
        async with self._tx(tenant_id) as conn:
            await conn.execute(_PURGE_NONCES, tenant_id, NONCE_TTL)
            await conn.execute(_NEW_NONCE, tenant_id, digest(nonce), NONCE_TTL)
        return nonce

    async def use_nonce(self, tenant_id: uuid.UUID, nonce: str) -> bool:
        async with self._tx(tenant_id) as conn:
            return await conn.fetchval(_USE_NONCE, tenant_id, digest(nonce)) is not None

    async def mark_claimed(self, tenant_id: uuid.UUID, record_id: uuid.UUID) -> None:
        async with self._tx(tenant_id) as conn:
            await conn.execute(_CLAIMED, tenant_id, record_id)
