"""UpdateRecordContact: one record's email or phone corrected, and its holder invited again.

The record goes back to the outbox (INVITED, EXPIRED or FAILED -> PENDING) with its sent stamps
cleared, as a resend does, and the issuance worker sends the batch's messages to the new
contact with the crash safety of any invitation. One grant, one credential: a record that holds
a credential keeps it and it is offered again (nothing is issued twice, and nothing needs
revoking: the holder never took it, and the old link and offer stop working before anyone
could). A FAILED record without a credential (it failed before issuance) is issued by the
worker like any PENDING record.

What reached the old contact stops working in the same transaction: the OID4VCI offer is
replaced (``resend.replace_offers``: the old one answers 410), and when a value changed the
claim link gets a new token, the old token's digest kept in ``superseded_claim_tokens`` so
that the public endpoints answer 410 for it. The new link works for ``claim_ttl`` from now.

``records.contact_updated_at`` is set when a value changed, and the records trigger raises
``record.contact_updated``; the caller writes the audit entry (who, when, which fields, never
a value) in the same transaction. Every function takes a connection inside
``credbatch.tenancy.tenant_transaction``; the lock order is that of ResendInvitations (the
record, then its credential and offers, then the batches row).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from credbatch.batches import resend
from credbatch.batches.model import RecordState
from credbatch.signing import opaque

# The states a correction may invite again from; every other one keeps its record.
CORRECTABLE: frozenset[RecordState] = frozenset(
    {RecordState.INVITED, RecordState.EXPIRED, RecordState.FAILED}
)

_LOCK = """
SELECT r.state, r.email, r.phone,
       EXISTS (SELECT 1 FROM credentials c
               WHERE c.tenant_id = r.tenant_id AND c.record_id = r.id) AS has_credential
FROM records r
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.id = $2
FOR UPDATE OF r
"""

# attempt 0: the correction starts the record's retries afresh, as RetryFailedRecords does.
_REINVITE = """
UPDATE records
SET email = $3, phone = $4, state = 'PENDING', attempt = 0, error_code = NULL,
    error_message = NULL, email_sent_at = NULL, sms_sent_at = NULL, expired_at = NULL,
    contact_updated_at = CASE WHEN $5 THEN now() ELSE contact_updated_at END, updated_at = now()
WHERE tenant_id = app_tenant() AND batch_id = $1 AND id = $2
"""

# The stamps of the earlier sends go too: the worker sends what has none, to the new contact.
_UNSENT = "DELETE FROM record_sends WHERE tenant_id = app_tenant() AND record_id = $1"

# The old token is kept as its digest only: the table must not hold a working link. The old
# value comes from a sub-select of the UPDATE (its snapshot): a locking read of the row in a
# CTE beside the UPDATE would find the row changed by this very statement and return nothing.
_REPLACE_CLAIM_LINK = """
WITH replaced AS (
  UPDATE credentials c SET claim_token = $2
  FROM (SELECT record_id, claim_token FROM credentials
        WHERE tenant_id = app_tenant() AND record_id = $1) o
  WHERE c.tenant_id = app_tenant() AND c.record_id = o.record_id
  RETURNING o.claim_token AS old_token
)
INSERT INTO superseded_claim_tokens (tenant_id, token_hash, record_id)
SELECT app_tenant(), sha256(convert_to(old_token, 'UTF8')), $1 FROM replaced
"""


@dataclass(frozen=True)
class ContactChange:
    """The new contact of one record: a field is None when the request leaves it as it is."""

    batch_id: uuid.UUID
    record_id: uuid.UUID
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class Reinvited:
    """The record is PENDING again; ``changed`` names the fields whose value changed."""

    changed: tuple[str, ...]
    previous: RecordState
    state: RecordState = RecordState.PENDING


@dataclass(frozen=True)
class UnknownRecord:
    """No record of that id in that batch is visible to the caller (nothing changed)."""


@dataclass(frozen=True)
class NotCorrectable:
    """The record is in a state a correction does not reinvite from (nothing changed)."""

    state: RecordState


async def update_contact(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    change: ContactChange,
    *,
    claim_ttl: float,
) -> Reinvited | UnknownRecord | NotCorrectable:
    """Change the record's contact and send its invitation again (see the module docstring).

    The caller has checked that the batch is its own to change and not cancelled, and
    validated the new values. Any answer but ``Reinvited`` means nothing was written.
    """
    row = await conn.fetchrow(_LOCK, change.batch_id, change.record_id)
    if row is None:
        return UnknownRecord()
    state = RecordState(row["state"])
    if state not in CORRECTABLE:
        return NotCorrectable(state)
    email = row["email"] if change.email is None else change.email
    phone = row["phone"] if change.phone is None else change.phone
    changed = tuple(
        field
        for field, old, new in (("email", row["email"], email), ("phone", row["phone"], phone))
        if old != new
    )
    await conn.execute(_REINVITE, change.batch_id, change.record_id, email, phone, bool(changed))
    await conn.execute(_UNSENT, change.record_id)
    if row["has_credential"]:
        ids = [change.record_id]
        await resend.replace_offers(conn, ids)
        if changed:
            # The old link may have reached someone else: it must not show the credential.
            await conn.execute(_REPLACE_CLAIM_LINK, change.record_id, opaque.new_id(tenant_id))
        await resend.renew_links(conn, ids, claim_ttl)
    await resend.reopen_batch(conn, change.batch_id)
    return Reinvited(changed, state)
