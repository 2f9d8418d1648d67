"""ResendInvitations: INVITED and EXPIRED records back to the outbox, their offers replaced.

A resent record goes INVITED (or EXPIRED) -> PENDING with its sent stamps cleared and its
claim link given a new lifetime (``claim_ttl`` from now, never shortened), so an expired link
works again; the relay publishes it
as any PENDING record (the tenant's sending rates and fair share apply) and the issuance worker,
finding its credential, makes it ISSUED again and sends every medium of the batch, with the
crash safety of any invitation (each accepted send stamped, a redelivery sends only what is
missing). Nothing is issued again: one grant, one credential.

In an OID4VCI batch the record's offer is replaced in the same transaction: its code digest
moves to ``oid4vci_superseded_offers`` (the offer endpoint then answers 410 and the token
endpoint knows the code no more), the offer row and the record's access tokens are deleted,
and the worker stores the next generation's offer when it sends the new invitation (this
process holds no KEK, which the transaction code needs). Between the two the record has no
offer at all: a wallet can obtain nothing from it until the new invitation is on its way.

Every function takes a connection inside ``credbatch.tenancy.tenant_transaction``; the whole
resend is one transaction (the lock order is in ``docs/architecture.md``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from credbatch.db import idempotency

_REQUEST_KIND = "invitation_resend"

# One statement, so that the counts and the records resent come from one snapshot. The
# INVITED and EXPIRED records are locked in id order, SKIP LOCKED: a worker's issue
# transaction or a claim holding one is never waited for; such a record is counted busy. The
# state is tested again under the lock (a record claimed meanwhile is not resent).
_RESEND = """
WITH chosen AS (
  SELECT id FROM records
  WHERE tenant_id = app_tenant() AND batch_id = $1 AND state IN ('INVITED', 'EXPIRED')
    AND ($2::uuid[] IS NULL OR id = ANY ($2::uuid[]))
  ORDER BY id
  FOR UPDATE SKIP LOCKED
), done AS (
  UPDATE records r
  SET state = 'PENDING', attempt = 0, error_code = NULL, error_message = NULL,
      email_sent_at = NULL, sms_sent_at = NULL, expired_at = NULL, updated_at = now()
  FROM chosen c
  WHERE r.tenant_id = app_tenant() AND r.id = c.id AND r.state IN ('INVITED', 'EXPIRED')
  RETURNING r.id
), unsent AS (
  -- The stamps of the earlier sends go too: the worker sends what has none.
  DELETE FROM record_sends s USING done d
  WHERE s.tenant_id = app_tenant() AND s.record_id = d.id
), seen AS (
  SELECT state, count(*) AS n FROM records
  WHERE tenant_id = app_tenant() AND batch_id = $1
    AND ($2::uuid[] IS NULL OR id = ANY ($2::uuid[]))
  GROUP BY state
)
SELECT (SELECT coalesce(array_agg(id), '{}') FROM done) AS resent,
       (SELECT coalesce(array_agg(state), '{}') FROM seen) AS states,
       (SELECT coalesce(array_agg(n), '{}') FROM seen) AS counts
"""

# The replaced offers' digests are kept (410 Gone), numbered by generation per record.
_SUPERSEDE_OFFERS = """
WITH gone AS (
  DELETE FROM oid4vci_offers
  WHERE tenant_id = app_tenant() AND record_id = ANY ($1::uuid[])
  RETURNING record_id, code_hash
)
INSERT INTO oid4vci_superseded_offers (tenant_id, code_hash, record_id, generation)
SELECT app_tenant(), g.code_hash, g.record_id,
       (SELECT coalesce(max(s.generation) + 1, 0) FROM oid4vci_superseded_offers s
        WHERE s.tenant_id = app_tenant() AND s.record_id = g.record_id)
FROM gone g
"""

# The new invitation's link works for claim_ttl from now; one that still had longer keeps it.
_RENEW_LINKS = """
UPDATE credentials
SET claim_expires_at = greatest(claim_expires_at, now() + make_interval(secs => $2))
WHERE tenant_id = app_tenant() AND record_id = ANY ($1::uuid[])
"""

# An access token obtained with the old offer must not fetch the credential after the resend.
_DROP_ACCESS_TOKENS = """
DELETE FROM oid4vci_access_tokens WHERE tenant_id = app_tenant() AND record_id = ANY ($1::uuid[])
"""

# As after RetryFailedRecords: the batch has work again until the invitations are out.
_REOPEN_BATCH = """
UPDATE batches SET state = 'IN_PROGRESS', completed_at = NULL, updated_at = now()
WHERE tenant_id = app_tenant() AND id = $1 AND cancelled_at IS NULL
"""

_MISSING = """
SELECT x.id FROM unnest($2::uuid[]) AS x (id)
WHERE NOT EXISTS (SELECT 1 FROM records r
                  WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.id = x.id)
"""

_STORE = """
INSERT INTO invitation_resends (tenant_id, id, batch_id, resent, claimed, revoked, failed,
                                cancelled, in_progress, busy)
VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9)
"""

_STORED = """
SELECT batch_id, resent, claimed, revoked, failed, cancelled, in_progress, busy
FROM invitation_resends WHERE tenant_id = app_tenant() AND id = $1
"""


@dataclass(frozen=True)
class Resent:
    """What a resend did: the records resent, and those skipped by reason."""

    resent: int
    claimed: int = 0
    revoked: int = 0
    failed: int = 0
    cancelled: int = 0
    in_progress: int = 0  # PENDING, QUEUED or ISSUED: the first invitation is on its way
    busy: int = 0  # INVITED but held by another transaction


@dataclass(frozen=True)
class UnknownRecords:
    """Ids that name no record of the batch the caller can see (nothing was resent)."""

    ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class BatchCancelled:
    """The batch is cancelled: its records are not invited again (nothing was resent)."""


@dataclass(frozen=True)
class ReusedRequest:
    """The request id was used before for another batch (nothing was resent)."""

    batch_id: uuid.UUID


async def resend_invitations(
    conn: asyncpg.Connection,
    batch_id: uuid.UUID,
    record_ids: Sequence[uuid.UUID] | None,
    request_id: str = "",
    *,
    batch_cancelled: bool = False,
    claim_ttl: float,
) -> Resent | UnknownRecords | ReusedRequest | BatchCancelled:
    """Resend the invitations of the INVITED and EXPIRED records among ``record_ids`` (None:
    the batch's), their claim links renewed for ``claim_ttl`` seconds.

    The caller has checked that the batch is visible and its own to change, and says whether
    it is cancelled. With a ``request_id`` used before for this batch, the first call's answer
    is returned and nothing is resent. Any answer but ``Resent`` means nothing may be written:
    the caller rolls the transaction back (the request id's claim with it).
    """
    resend_id = uuid.uuid4()
    earlier = await idempotency.claim(conn, _REQUEST_KIND, request_id, resend_id)
    if earlier is not None:
        return await _stored(conn, earlier, batch_id)
    if batch_cancelled:
        return BatchCancelled()
    if record_ids is not None:
        missing = await conn.fetch(_MISSING, batch_id, list(record_ids))
        if missing:
            return UnknownRecords(tuple(row["id"] for row in missing))
    row = await conn.fetchrow(_RESEND, batch_id, None if record_ids is None else list(record_ids))
    resent_ids: list[uuid.UUID] = list(row["resent"])
    states: dict[str, int] = dict(zip(row["states"], row["counts"], strict=True))
    if resent_ids:
        await replace_offers(conn, resent_ids)
        await renew_links(conn, resent_ids, claim_ttl)
        await reopen_batch(conn, batch_id)
    outcome = Resent(
        resent=len(resent_ids),
        claimed=states.get("CLAIMED", 0),
        revoked=states.get("REVOKED", 0),
        failed=states.get("FAILED", 0),
        cancelled=states.get("CANCELLED", 0),
        in_progress=sum(states.get(s, 0) for s in ("PENDING", "QUEUED", "ISSUED")),
        # INVITED or EXPIRED in the statement's snapshot but not resent: locked by someone else.
        busy=max(0, states.get("INVITED", 0) + states.get("EXPIRED", 0) - len(resent_ids)),
    )
    if request_id:
        await conn.execute(
            _STORE,
            resend_id,
            batch_id,
            outcome.resent,
            outcome.claimed,
            outcome.revoked,
            outcome.failed,
            outcome.cancelled,
            outcome.in_progress,
            outcome.busy,
        )
    return outcome


async def replace_offers(conn: asyncpg.Connection, record_ids: Sequence[uuid.UUID]) -> None:
    """Retire the records' current offers (410 from now on) and their access tokens; the
    worker stores the next generation's offer with the next invitation."""
    await conn.execute(_SUPERSEDE_OFFERS, list(record_ids))
    await conn.execute(_DROP_ACCESS_TOKENS, list(record_ids))


async def renew_links(
    conn: asyncpg.Connection, record_ids: Sequence[uuid.UUID], claim_ttl: float
) -> None:
    """Give the records' claim links ``claim_ttl`` seconds from now (never less than before)."""
    await conn.execute(_RENEW_LINKS, list(record_ids), float(claim_ttl))


async def reopen_batch(conn: asyncpg.Connection, batch_id: uuid.UUID) -> None:
    """The batch has work again (IN_PROGRESS) until the new invitations are out."""
    await conn.execute(_REOPEN_BATCH, batch_id)


async def _stored(
    conn: asyncpg.Connection, resend_id: uuid.UUID, batch_id: uuid.UUID
) -> Resent | ReusedRequest:
    row = await conn.fetchrow(_STORED, resend_id)
    if row is None:
        # The key names no resend of this tenant: impossible unless the row was deleted.
        raise RuntimeError("an idempotency key names a resend that is not stored")
    if row["batch_id"] != batch_id:
        return ReusedRequest(row["batch_id"])
    return Resent(
        resent=row["resent"],
        claimed=row["claimed"],
        revoked=row["revoked"],
        failed=row["failed"],
        cancelled=row["cancelled"],
        in_progress=row["in_progress"],
        busy=row["busy"],
    )
