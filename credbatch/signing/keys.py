"""Tenants' ES256 signing keys: created on first use, wrapped at rest, cached per process.

Two workers signing the first credential of a tenant at the same time both generate a key;
the partial unique index ``signing_keys_one_active`` lets only one insert win, and the loser
reads and uses the winner's key, so a tenant has exactly one active key.

The issuance workers read and create keys as the application role, in the tenant's
transaction. The signer only reads them, as its own role, which has no table: through
``signer_signing_key`` (``KeyRing(..., signer=True)``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from credbatch import audit
from credbatch.signing import kek as kek_wrap
from credbatch.signing.jose import ALG, public_jwk, thumbprint
from credbatch.tenancy import service_scope, tenant_transaction

_INSERT = """
INSERT INTO signing_keys (tenant_id, kid, alg, public_jwk, private_key_enc, nonce, kek_id, active)
VALUES ($1, $2, $3, $4, $5, $6, $7, true)
ON CONFLICT (tenant_id) WHERE active DO NOTHING
"""
_ACTIVE = """
SELECT kid, private_key_enc, nonce, kek_id FROM signing_keys
WHERE tenant_id = $1 AND active
"""
_SIGNERS = "SELECT kid, private_key_enc, nonce, kek_id FROM signer_signing_key($1)"


class NoSigningKey(LookupError):
    """The tenant has no active key, and this ring does not create one."""


@dataclass(frozen=True)
class SigningKey:
    """A tenant's active key, decrypted."""

    tenant_id: uuid.UUID
    kid: str
    private_key: ec.EllipticCurvePrivateKey


def new_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, str], str]:
    """A fresh P-256 key, its public JWK and its kid (RFC 7638 thumbprint)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(private_key.public_key())
    return private_key, jwk, thumbprint(jwk)


class KeyRing:
    """Per-process cache of tenants' active keys, backed by the ``signing_keys`` table."""

    def __init__(self, pool: asyncpg.Pool, kek: bytes, *, signer: bool = False) -> None:
        """``pool`` connects as the application role, which may create a tenant's first key;
        with ``signer``, as the signer's role, which reads the active key and creates none."""
        if len(kek) != 32:
            raise ValueError("the KEK must be 32 bytes")
        self._pool = pool
        self._signer = signer
        self._kek = kek
        self._kek_id = kek_wrap.kek_id(kek)
        self._cache: dict[uuid.UUID, SigningKey] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def active_key(self, tenant_id: uuid.UUID) -> SigningKey:
        """The tenant's active key, created when the tenant has none yet (a signer's ring
        raises NoSigningKey instead)."""
        cached = self._cache.get(tenant_id)
        if cached is not None:
            return cached
        # One load per tenant per process, however many jobs ask at once.
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(tenant_id)
            if cached is None:
                cached = await self._load_or_create(tenant_id)
                self._cache[tenant_id] = cached
            return cached

    async def _load_or_create(self, tenant_id: uuid.UUID) -> SigningKey:
        row = await (self._read(tenant_id) if self._signer else self._read_or_create(tenant_id))
        if row["kek_id"] is not None and row["kek_id"] != self._kek_id:
            # Said before trying: a bare GCM failure would not tell the operator which KEK.
            raise kek_wrap.KeyUnwrapError(
                f"signing key {row['kid']} is wrapped under KEK {row['kek_id']}, this process "
                f"has KEK {self._kek_id} (were the keys rewrapped? restart with the new KEK)"
            )
        der = kek_wrap.unwrap(
            self._kek, tenant_id, row["kid"], bytes(row["nonce"]), bytes(row["private_key_enc"])
        )
        loaded = serialization.load_der_private_key(der, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TypeError("a stored signing key is not an EC key")
        return SigningKey(tenant_id=tenant_id, kid=row["kid"], private_key=loaded)

    async def _read(self, tenant_id: uuid.UUID) -> asyncpg.Record:
        row = await self._pool.fetchrow(_SIGNERS, tenant_id)
        if row is None:
            raise NoSigningKey(f"tenant {tenant_id} has no active signing key")
        return row

    async def _read_or_create(self, tenant_id: uuid.UUID) -> asyncpg.Record:
        async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
            row = await conn.fetchrow(_ACTIVE, tenant_id)
            if row is None:
                private_key, jwk, kid = new_key()
                der = private_key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                nonce, ciphertext = kek_wrap.wrap(self._kek, tenant_id, kid, der)
                await conn.execute(
                    _INSERT,
                    tenant_id,
                    kid,
                    ALG,
                    {**jwk, "kid": kid, "alg": ALG, "use": "sig"},
                    ciphertext,
                    nonce,
                    self._kek_id,
                )
                # Either ours or a concurrent winner's: whichever is active now.
                row = await conn.fetchrow(_ACTIVE, tenant_id)
        assert row is not None
        return row


@dataclass(frozen=True)
class RewrapResult:
    """What ``rewrap_all`` did: keys moved to the new KEK, keys already under it."""

    rewrapped: int
    already: int
    new_kek_id: str


REWRAP_ACTOR = "cli:keys-rewrap"


async def rewrap_all(owner: asyncpg.Connection, old_kek: bytes, new_kek: bytes) -> RewrapResult:
    """Re-wrap every tenant's signing keys under ``new_kek``, in one transaction.

    Runs as the owner, which must see every tenant's rows (superuser or BYPASSRLS: the table
    forces row-level security). All or nothing: a key that decrypts under neither KEK aborts
    the whole transaction, so no tenant is left half-moved. Keys already under the new KEK
    are left alone, which makes a second run after a crash harmless.

    Each tenant whose keys moved gets an audit entry (system actor ``REWRAP_ACTOR``, the
    count and the new KEK's id) in the same transaction.

    Raises:
        KeyUnwrapError: a key does not decrypt under ``old_kek``.
        PermissionError: the connection's role does not bypass row-level security.
    """
    bypasses = await owner.fetchval(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    if not bypasses:
        raise PermissionError(
            "rewrap must run as a role that bypasses row-level security (the owner used for "
            "migrations, superuser or BYPASSRLS); otherwise it would see no tenant's keys"
        )
    old_id, new_id = kek_wrap.kek_id(old_kek), kek_wrap.kek_id(new_kek)
    rewrapped = already = 0
    moved: Counter[uuid.UUID] = Counter()
    async with owner.transaction():
        rows = await owner.fetch(
            "SELECT tenant_id, kid, private_key_enc, nonce, kek_id FROM signing_keys"
            " ORDER BY tenant_id, kid FOR UPDATE"
        )
        for row in rows:
            if row["kek_id"] == new_id and new_id != old_id:
                already += 1
                continue
            tenant_id: uuid.UUID = row["tenant_id"]
            der = kek_wrap.unwrap(
                old_kek, tenant_id, row["kid"], bytes(row["nonce"]), bytes(row["private_key_enc"])
            )
            nonce, ciphertext = kek_wrap.wrap(new_kek, tenant_id, row["kid"], der)
            await owner.execute(
                "UPDATE signing_keys SET private_key_enc = $3, nonce = $4, kek_id = $5"
                " WHERE tenant_id = $1 AND kid = $2",
                tenant_id,
                row["kid"],
                ciphertext,
                nonce,
                new_id,
            )
            rewrapped += 1
            moved[tenant_id] += 1
        for tenant_id, count in sorted(moved.items()):
            await audit.record(
                owner,
                audit.Actor.system(tenant_id, REWRAP_ACTOR),
                audit.Action.SIGNING_KEYS_REWRAP,
                "signingKeys",
                details={"rewrapped": count, "kek_id": new_id},
            )
    return RewrapResult(rewrapped, already, new_id)
