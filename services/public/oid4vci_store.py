"""The database side of the public OID4VCI endpoints, each call inside the URL's tenant.

The issuer identifier carries the tenant (``/tenants/{tenant}``), and every call passes it to
a function of the public endpoints' role (``credbatch/db/functions/public_*.sql``): an offer,
access token or nonce of one tenant presented at another's endpoints is simply not found.
Nonces themselves are stateless (``services.public.nonces``); only a spent one is stored.
Secrets are looked up by their SHA-256 digest; the transaction code is checked, and wrong
codes counted, inside the database, so this process never holds a code's digest.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import asyncpg
import orjson

from credbatch.signing.offer_codes import digest
from services.public.nonces import Nonce

_CONFIGURATIONS = "SELECT * FROM public_credential_configurations($1)"
_OFFER = "SELECT * FROM public_offer($1, $2)"
_EXCHANGE = "SELECT public_offer_exchange($1, $2, $3, $4)"
_GRANT = "SELECT * FROM public_access_grant($1, $2)"
_USE_NONCE = "SELECT public_nonce_use($1, $2, $3)"


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
    """What a token request achieved (the outcomes of ``public_offer_exchange``)."""

    GRANTED = "granted"
    UNKNOWN = "unknown"  # no such code; used, expired, ended by wrong tx codes, or revoked
    TX_CODE_MISSING = "tx_code_missing"
    TX_CODE_UNEXPECTED = "tx_code_unexpected"
    TX_CODE_WRONG = "tx_code_wrong"


@dataclass(frozen=True)
class Grant:
    """The record an unused access token is good for, and its credential configuration."""

    record_id: uuid.UUID
    configuration_id: str
    revoked: bool
    type_path: str  # the credential type (vct) below the issuer: /schemas/{id}/v{version}


def _attributes(raw: Any) -> list[dict[str, Any]]:
    value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return [a for a in value if isinstance(a, dict)]


class Oid4vciStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        """``pool`` connects as the public endpoints' role."""
        self._pool = pool

    async def configurations(self, tenant_id: uuid.UUID) -> list[Configuration]:
        rows = await self._pool.fetch(_CONFIGURATIONS, tenant_id)
        return [
            Configuration(
                r["schema_id"], r["version"], r["display_name"], _attributes(r["attributes"])
            )
            for r in rows
        ]

    async def offer(self, tenant_id: uuid.UUID, code: str) -> Offer | None:
        row = await self._pool.fetchrow(_OFFER, tenant_id, digest(code))
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
        token = secrets.token_urlsafe(32)
        outcome = Exchange(
            await self._pool.fetchval(
                _EXCHANGE,
                tenant_id,
                digest(code),
                None if tx_code is None else digest(tx_code),
                digest(token),
            )
        )
        return outcome, token if outcome is Exchange.GRANTED else None

    async def grant(self, tenant_id: uuid.UUID, access_token: str) -> Grant | None:
        row = await self._pool.fetchrow(_GRANT, tenant_id, digest(access_token))
        if row is None:
            return None
        return Grant(
            row["record_id"],
            configuration_id(row["schema_id"], row["schema_version"]),
            row["revoked"],
            f"/schemas/{row['schema_id']}/v{row['schema_version']}",
        )

    async def use_nonce(self, tenant_id: uuid.UUID, nonce: Nonce) -> bool:
        """Spend a checked nonce; False when it was spent before."""
        expires_at = datetime.fromtimestamp(nonce.expires_at, UTC)
        used: bool = await self._pool.fetchval(_USE_NONCE, tenant_id, nonce.digest, expires_at)
        return used
