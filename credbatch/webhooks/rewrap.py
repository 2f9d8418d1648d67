"""Moving every tenant's webhook signing secrets to a new key, and sealing plain-text ones.

``credbatch webhooks rewrap-secrets`` runs it as the owner, which must see every tenant's rows
(superuser or BYPASSRLS: the table forces row-level security), in one transaction: a secret
that opens under neither key aborts the whole run, so no tenant is left half-moved. Secrets
already under the new key are left alone, which makes a second run after a crash harmless; a
secret stored in plain text before secrets were sealed is sealed under the new key, and its
plain text cleared. Each tenant whose secrets moved or were sealed gets an audit entry
(system actor ``REWRAP_ACTOR``) in the same transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

import asyncpg

from credbatch import audit
from credbatch.webhooks.sealing import Sealed, SecretBox

_ROWS = """
SELECT tenant_id, endpoint_id, id, legacy_secret, secret_enc, nonce, kek_id
FROM webhook_secrets ORDER BY tenant_id, endpoint_id, id FOR UPDATE
"""
REWRAP_ACTOR = "cli:webhooks-rewrap-secrets"
_STORE = """
UPDATE webhook_secrets SET secret_enc = $4, nonce = $5, kek_id = $6, legacy_secret = NULL
WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3
"""


@dataclass(frozen=True)
class SecretsRewrapped:
    """What ``rewrap_secrets`` did: secrets moved to the new key, plain-text ones sealed
    under it, secrets already under it."""

    rewrapped: int
    sealed: int
    already: int
    new_kek_id: str


async def rewrap_secrets(
    owner: asyncpg.Connection, old_kek: bytes, new_kek: bytes
) -> SecretsRewrapped:
    """Seal every webhook secret under ``new_kek`` (``old_kek`` opens the sealed ones).

    Raises:
        SecretUnsealError: a sealed secret does not open under ``old_kek``.
        PermissionError: the connection's role does not bypass row-level security.
    """
    bypasses = await owner.fetchval(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    if not bypasses:
        raise PermissionError(
            "rewrap-secrets must run as a role that bypasses row-level security (the owner "
            "used for migrations, superuser or BYPASSRLS); otherwise it would see no "
            "tenant's secrets"
        )
    old, new = SecretBox(old_kek), SecretBox(new_kek)
    rewrapped = sealed = already = 0
    moved: Counter[uuid.UUID] = Counter()
    async with owner.transaction():
        for row in await owner.fetch(_ROWS):
            ids = (row["tenant_id"], row["endpoint_id"], row["id"])
            if row["legacy_secret"] is not None:
                secret = row["legacy_secret"]
                sealed += 1
            elif row["kek_id"] == new.kek_id:
                already += 1
                continue
            else:
                stored = Sealed(bytes(row["secret_enc"]), bytes(row["nonce"]), row["kek_id"])
                secret = old.open(*ids, stored)
                rewrapped += 1
            stored_now = new.seal(*ids, secret)
            await owner.execute(
                _STORE, *ids, stored_now.ciphertext, stored_now.nonce, stored_now.kek_id
            )
            moved[row["tenant_id"]] += 1
        for tenant_id, count in sorted(moved.items()):
            await audit.record(
                owner,
                audit.Actor.system(tenant_id, REWRAP_ACTOR),
                audit.Action.WEBHOOK_SECRETS_REWRAP,
                "webhookSecrets",
                details={"secrets": count, "kek_id": new.kek_id},
            )
    return SecretsRewrapped(rewrapped, sealed, already, new.kek_id)
