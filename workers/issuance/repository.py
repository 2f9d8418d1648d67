"""SQL of the issuance worker; every statement handles a whole group of records at once.

One UPDATE ... FROM unnest per group rather than one statement per record: a statement per
record costs a round trip and a commit each, which groups of hundreds of records amortise.
Locking follows ``docs/architecture.md`` ("Lock order"): records are locked (in id order, so
concurrent groups cannot deadlock) before any batches row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from credbatch.batches.model import BatchState, RecordState

# Driven by the primary key alone: joining batches here let the planner start from the
# batch and filter its every record by id (all 20,000 of a fresh batch, whose statistics say
# it is tiny) for each group. The batch's state is one primary-key probe per locked record.
LOCK_RECORDS = """
SELECT r.id, r.batch_id, r.state, r.email, r.phone, r.attributes, r.email_send,
       -- Sent: by the outcome, or stamped as accepted before a crash left no outcome.
       r.email_sent_at IS NOT NULL OR EXISTS (
         SELECT 1 FROM record_sends s
         WHERE s.tenant_id = r.tenant_id AND s.record_id = r.id AND s.medium = 'EMAIL'
       ) AS email_sent,
       r.sms_sent_at IS NOT NULL OR EXISTS (
         SELECT 1 FROM record_sends s
         WHERE s.tenant_id = r.tenant_id AND s.record_id = r.id AND s.medium = 'SMS'
       ) AS sms_sent,
       (SELECT b.state FROM batches b
        WHERE b.tenant_id = r.tenant_id AND b.id = r.batch_id) AS batch_state,
       -- A PENDING record may hold a credential (a retried or resent one): it is only
       -- invited again. One probe of the credentials' (tenant_id, record_id) key each.
       EXISTS (SELECT 1 FROM credentials c
               WHERE c.tenant_id = r.tenant_id AND c.record_id = r.id) AS has_credential,
       -- Issued moments ago and no outcome written since (an outcome sets error_code or
       -- moves the state on): another worker is inviting it now, or died doing so. Seconds
       -- left of the lease, 0 when none. From issued_at: the sweeper touches updated_at
       -- when it dispatches a stuck record again, which must not renew the lease.
       CASE WHEN r.state = 'ISSUED' AND r.error_code IS NULL AND r.issued_at IS NOT NULL
            THEN greatest(0, extract(epoch FROM r.issued_at - now()) + $3)
            ELSE 0 END::float8 AS in_hand_for
FROM records r
WHERE r.tenant_id = $1 AND r.id = ANY($2::uuid[])
ORDER BY r.id
FOR UPDATE OF r
"""

INSERT_CREDENTIALS = """
INSERT INTO credentials (tenant_id, id, record_id, batch_id, kid, status_list_id, status_index,
                         sd_jwt, claim_token, expires_at, claim_expires_at)
SELECT $1, u.id, u.record_id, u.batch_id, $2, u.list_id, u.idx, u.sd_jwt, u.claim_token,
       u.expires_at, now() + make_interval(secs => $11)
FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::int[], $8::text[], $9::text[],
            $10::timestamptz[])
     AS u(id, record_id, batch_id, list_id, idx, sd_jwt, claim_token, expires_at)
ON CONFLICT (tenant_id, record_id) DO NOTHING
RETURNING record_id
"""

INSERT_CERTIFICATES = """
INSERT INTO certificates (tenant_id, id, record_id, pdf)
SELECT $1, u.id, u.record_id, u.pdf
FROM unnest($2::text[], $3::uuid[], $4::bytea[]) AS u(id, record_id, pdf)
ON CONFLICT (tenant_id, record_id) DO NOTHING
RETURNING record_id
"""

# Only records LOCK_RECORDS locked, in this transaction, as PENDING or QUEUED are passed, so
# their state cannot have changed and is not tested again: a state condition let the planner
# walk every PENDING/QUEUED record of the tenant in records_progress_idx and compare each with
# every id of the group: work that grows with the tenant's open records, however small the group.
MARK_ISSUED = """
UPDATE records r
SET state = 'ISSUED', issued_at = now(), updated_at = now(), attempt = u.attempt,
    error_code = NULL, error_message = NULL
FROM unnest($2::uuid[], $3::int[]) AS u(id, attempt)
WHERE r.tenant_id = $1 AND r.id = u.id
"""

# Records issued before (they hold a credential) that came back through the outbox: ISSUED
# again, keeping their issued_at, so that the outcome write (which changes only ISSUED
# records) makes them INVITED. As for MARK_ISSUED, only records locked here are passed.
MARK_REISSUED = """
UPDATE records r
SET state = 'ISSUED', updated_at = now(), attempt = u.attempt,
    error_code = NULL, error_message = NULL
FROM unnest($2::uuid[], $3::int[]) AS u(id, attempt)
WHERE r.tenant_id = $1 AND r.id = u.id
"""

BATCHES_IN_PROGRESS = """
UPDATE batches SET state = 'IN_PROGRESS', updated_at = now()
WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND state = 'QUEUED'
"""

# offer_generation: the generation of the record's current offer, one past the last offer a
# resend replaced (0 when none was); its key (tenant_id, record_id, generation) serves it.
DELIVERY_LINKS = """
SELECT c.record_id, c.claim_token, ce.id AS certificate_id,
       (SELECT coalesce(max(s.generation) + 1, 0) FROM oid4vci_superseded_offers s
        WHERE s.tenant_id = c.tenant_id AND s.record_id = c.record_id) AS offer_generation
FROM credentials c
LEFT JOIN certificates ce ON ce.tenant_id = c.tenant_id AND ce.record_id = c.record_id
WHERE c.tenant_id = $1 AND c.record_id = ANY($2::uuid[])
"""


@dataclass(frozen=True)
class LockedRecord:
    """A row of LOCK_RECORDS."""

    id: uuid.UUID
    batch_id: uuid.UUID
    state: RecordState
    batch_state: BatchState
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    email_sent: bool
    sms_sent: bool
    has_credential: bool = False
    # Which send of the email this is (records.email_send): its VERP token carries it.
    email_send: int = 0
    # Seconds left before another worker's fresh issue of it is no longer left to that worker.
    in_hand_for: float = 0.0


async def lock_records(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    record_ids: Sequence[uuid.UUID],
    lease: float = 0.0,
) -> dict[uuid.UUID, LockedRecord]:
    """Lock the tenant's records among ``record_ids`` (others are absent from the result);
    ``lease``: seconds after its issue that an ISSUED record is left to the worker that
    issued it (``LockedRecord.in_hand_for``)."""
    rows = await conn.fetch(LOCK_RECORDS, tenant_id, list(record_ids), lease)
    return {
        row["id"]: LockedRecord(
            id=row["id"],
            batch_id=row["batch_id"],
            state=RecordState(row["state"]),
            batch_state=BatchState(row["batch_state"]),
            email=row["email"],
            phone=row["phone"],
            attributes=dict(row["attributes"]),
            email_sent=row["email_sent"],
            sms_sent=row["sms_sent"],
            has_credential=row["has_credential"],
            email_send=row["email_send"],
            in_hand_for=row["in_hand_for"],
        )
        for row in rows
    }


async def mark_reissued(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, records: Sequence[tuple[uuid.UUID, int]]
) -> None:
    """Make ISSUED again the locked (record id, attempt) records that hold a credential."""
    if records:
        await conn.execute(
            MARK_REISSUED, tenant_id, [r for r, _ in records], [a for _, a in records]
        )


async def mark_in_progress(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, batch_ids: Sequence[uuid.UUID]
) -> None:
    await conn.execute(BATCHES_IN_PROGRESS, tenant_id, list(batch_ids))


@dataclass
class NewCredential:
    id: uuid.UUID
    record_id: uuid.UUID
    batch_id: uuid.UUID
    list_id: uuid.UUID
    index: int
    sd_jwt: str
    claim_token: str
    expires_at: datetime | None
    attempt: int
    certificate_id: str | None = None
    pdf: bytes | None = None


async def insert_issued(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    kid: str,
    issued: Sequence[NewCredential],
    claim_ttl: int,
) -> set[uuid.UUID]:
    """Insert the credentials (and certificates) and mark their records ISSUED.

    Returns the records whose credential and certificate (when rendered) were stored now, so
    their links are the ones in ``issued``; any other record already had a credential (a
    retried record issued before) and its stored links must be read (``stored_links``).
    """
    if not issued:
        return set()
    inserted = await conn.fetch(
        INSERT_CREDENTIALS,
        tenant_id,
        kid,
        [c.id for c in issued],
        [c.record_id for c in issued],
        [c.batch_id for c in issued],
        [c.list_id for c in issued],
        [c.index for c in issued],
        [c.sd_jwt for c in issued],
        [c.claim_token for c in issued],
        [c.expires_at for c in issued],
        float(claim_ttl),
    )
    stored = {row["record_id"] for row in inserted}
    with_pdf = [c for c in issued if c.pdf is not None]
    if with_pdf:
        rows = await conn.fetch(
            INSERT_CERTIFICATES,
            tenant_id,
            [c.certificate_id for c in with_pdf],
            [c.record_id for c in with_pdf],
            [c.pdf for c in with_pdf],
        )
        stored_pdf = {row["record_id"] for row in rows}
        stored -= {c.record_id for c in with_pdf if c.record_id not in stored_pdf}
    await conn.execute(
        MARK_ISSUED, tenant_id, [c.record_id for c in issued], [c.attempt for c in issued]
    )
    return stored


@dataclass(frozen=True)
class StoredLinks:
    """What a stored credential is reached by."""

    claim_token: str
    certificate_id: str | None  # None: no certificate stored for the record
    offer_generation: int = 0  # of the record's current offer (OID4VCI batches)


async def stored_links(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, record_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StoredLinks]:
    if not record_ids:
        return {}
    rows = await conn.fetch(DELIVERY_LINKS, tenant_id, list(record_ids))
    return {
        row["record_id"]: StoredLinks(
            row["claim_token"], row["certificate_id"], row["offer_generation"]
        )
        for row in rows
    }
