"""Signed status list tokens, stored for the public endpoints to serve.

Signing needs a tenant's private key, so it happens in the issuance workers, which hold the
KEK; the internet-facing public process only reads the stored token
(``public_status_list_token``) and holds no key at all. A token becomes due
(``status_list_tokens.due_at``) when its list is created, when the list's bits change
(database triggers), and ``ttl`` seconds before it expires. Due tokens are signed again by
``StatusTokenSigner``: by the allocator as soon as it reserves indexes in a list that has
none yet, and by every worker's refresher for the rest.

Each row is signed by one worker at a time: it is locked ``FOR UPDATE SKIP LOCKED`` in the
tenant's transaction, and a worker that finds it locked, or no longer due, leaves it. A bit
change committed while a worker holds the lock waits for it (the trigger updates the same
row), then makes the row due again, so no change is lost behind a token signed just before.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import list_uri, status_list_token
from credbatch.tenancy import service_scope, tenant_transaction

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 300
# A list that cannot be signed (e.g. its tenant's key does not unwrap under this KEK) is tried
# again after this long, instead of holding the head of the due queue on every pass.
FAILED_RETRY_SECONDS = 60

_LOCK_DUE = """
SELECT l.bits, l.bits_per_entry
FROM status_list_tokens t
JOIN status_lists l ON l.tenant_id = t.tenant_id AND l.id = t.list_id
WHERE t.tenant_id = $1 AND t.list_id = $2 AND t.due_at <= now()
FOR UPDATE OF t SKIP LOCKED
"""
_STORE = """
UPDATE status_list_tokens
SET token = $3, expires_at = $4, due_at = $5, signed_at = now()
WHERE tenant_id = $1 AND list_id = $2
"""
_POSTPONE = """
UPDATE status_list_tokens SET due_at = now() + make_interval(secs => $3)
WHERE tenant_id = $1 AND list_id = $2 AND due_at <= now()
"""
# Across tenants, through the one SECURITY DEFINER function that lists due rows (ids only),
# which only the refresher's role may run.
_DUE = "SELECT tenant_id, list_id FROM status_list_tokens_due($1)"


@dataclass(frozen=True, slots=True)
class RefreshPass:
    """One refresh pass: due rows found, and those this worker signed (others skipped them)."""

    found: int
    signed: int


class StatusTokenSigner:
    """Signs due status list tokens with the tenant's active key and stores them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: KeyRing,
        public_url: str,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        self._pool = pool
        self._keys = keys
        self._public_url = public_url
        self._ttl = ttl_seconds

    async def publish_if_due(self, tenant_id: uuid.UUID, list_id: uuid.UUID) -> bool:
        """Sign and store the list's token if it is due and no other worker is at it.

        Returns whether this call signed it.
        """
        # The key first: loading it takes a connection of its own, and taking a second one
        # while holding the transaction's could exhaust a small pool.
        key = await self._keys.active_key(tenant_id)
        async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
            row = await conn.fetchrow(_LOCK_DUE, tenant_id, list_id)
            if row is None:
                return False
            now = time.time()
            token = status_list_token(
                key=key,
                uri=list_uri(self._public_url, tenant_id, list_id),
                bits=bytes(row["bits"]),
                bits_per_entry=int(row["bits_per_entry"]),
                ttl_seconds=self._ttl,
                now=now,
            )
            issued = int(now)
            await conn.execute(
                _STORE,
                tenant_id,
                list_id,
                token,
                datetime.fromtimestamp(issued + 2 * self._ttl, UTC),
                datetime.fromtimestamp(issued + self._ttl, UTC),
            )
        return True

    async def refresh_due(self, refresher_pool: asyncpg.Pool, limit: int = 100) -> RefreshPass:
        """Sign up to ``limit`` due tokens of any tenant.

        ``refresher_pool`` connects as the refresher's role, the only one that may list due
        tokens across tenants; each is then signed in its tenant's transaction, as the
        application role.
        """
        due = await refresher_pool.fetch(_DUE, limit)
        signed = 0
        for row in due:
            tenant_id, list_id = row["tenant_id"], row["list_id"]
            try:
                if await self.publish_if_due(tenant_id, list_id):
                    signed += 1
            except Exception:
                # One list's failure must not stop the others; when the database itself is
                # gone, the postponement fails too and ends the pass.
                log.exception("cannot sign status list %s of tenant %s", list_id, tenant_id)
                async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
                    await conn.execute(_POSTPONE, tenant_id, list_id, float(FAILED_RETRY_SECONDS))
        return RefreshPass(found=len(due), signed=signed)
