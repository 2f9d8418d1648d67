"""EraseHolder in domain terms: one holder's personal data erased from the tenant, at once.

The holder is named by an email address or phone number, normalised as uploads normalise
recipients (``credbatch.schema.values``), so the lookup finds what uploads stored; an email
address matches without regard to case, as the uploads' duplicate check compares them (a
mailbox differing only in case is, in practice, the same person's). In
one tenant transaction as the application role (row-level security: only the caller's
tenant's records are found, whatever the caller sends):

1. the holder's unerased records are locked in id order (the order the issuance worker and
   ``credbatch.batches.revocation`` lock records, so none of them waits on the other in a
   cycle); a worker issuing one of them meanwhile finishes first;
2. with ``revoke``, every record holding an issued credential is revoked, batch by batch, as
   RevokeRecords does (status list entry set, state REVOKED, the ``record.revoked`` event);
3. records still on their way (PENDING, QUEUED, ISSUED: nothing could be delivered without
   the contact data) are CANCELLED through the record lifecycle;
4. ``holder_records_erase`` erases what ``records_erase`` erases (its file lists it) and marks
   the records (``purge_reason`` ERASURE);
5. the audit entry (counts, batch names, never the contact) commits with the erasure.

Batches whose last open record was cancelled are completed after the commit, as the issuance
worker completes them. A second call finds nothing left and answers zeros: the call is
idempotent without a request id.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from dataclasses import dataclass

import asyncpg

from credbatch import audit
from credbatch.batches.lifecycle import complete_batches
from credbatch.batches.model import REVOCABLE_RECORD_STATES, RecordState
from credbatch.batches.revocation import Unrevocable, revoke_records
from credbatch.errors import FieldViolation, Internal, InvalidArgument
from credbatch.schema.values import normalize_email, normalize_phone
from credbatch.tenancy import TenantScope, tenant_transaction

DEFAULT_REASON = "holder data erased on request"
MAX_REASON = 500
# What the audit entry names (the resource): the tenant's holders, never one by contact.
RESOURCE = "holders"
# Records that are still to be issued or invited: cancelled, since nothing can reach the
# holder without the contact data.
_OPEN = frozenset({RecordState.PENDING, RecordState.QUEUED, RecordState.ISSUED})

_LOCK = """
SELECT r.id, r.batch_id, r.state
FROM records r
WHERE r.tenant_id = app_tenant() AND r.purged_at IS NULL
  -- email IS NOT NULL lets the planner use the partial records_email_idx.
  AND ((r.email IS NOT NULL AND lower(r.email) = lower($1)) OR r.phone = $2)
ORDER BY r.id
FOR UPDATE OF r
"""
_CANCEL = """
UPDATE records
SET state = 'CANCELLED', updated_at = now()
WHERE tenant_id = app_tenant() AND id = ANY ($1::uuid[])
  AND state = ANY ($2::text[])
"""
_ERASE = "SELECT holder_records_erase($1::uuid[])"


class Credentials(enum.Enum):
    """What happens to the holder's issued credentials."""

    REVOKE = "REVOKE"
    KEEP_VALID = "KEEP_VALID"


@dataclass(frozen=True)
class Holder:
    """Whom to erase: exactly one of an email address and a phone number, as written."""

    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Erased:
    """What one call did: records erased, credentials revoked, records cancelled, batches."""

    records_erased: int
    credentials_revoked: int
    records_cancelled: int
    batches: int


def _invalid(field: str, description: str, reason: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid {field}: {description}",
        violations=[FieldViolation(field, description, reason)],
    )


def lookup_keys(holder: Holder, default_region: str) -> tuple[str | None, str | None]:
    """The stored (email, phone) to look the holder up by; one of them None.

    Raises:
        InvalidArgument: neither or both given, or the one given is not a valid recipient.
    """
    if bool(holder.email) == bool(holder.phone):
        raise _invalid("holder", "give exactly one of email and phone", "EXACTLY_ONE_REQUIRED")
    try:
        if holder.email:
            return normalize_email(holder.email), None
        return None, normalize_phone(holder.phone, default_region)
    except ValueError as error:
        if holder.email:
            raise _invalid("email", str(error), "INVALID_EMAIL") from None
        raise _invalid("phone", str(error), "INVALID_PHONE") from None


def check_reason(reason: str) -> str:
    """The revoke reason to store (the default when empty).

    Raises:
        InvalidArgument: longer than MAX_REASON characters.
    """
    if len(reason) > MAX_REASON:
        raise _invalid("reason", f"at most {MAX_REASON} characters", "REASON_TOO_LONG")
    return reason or DEFAULT_REASON


class HolderErasure:
    """Erases holders of the caller's tenant (the RPC's roles are checked at the edge)."""

    def __init__(self, pool: asyncpg.Pool, default_region: str) -> None:
        self._pool = pool
        self._region = default_region

    async def erase(
        self, caller: TenantScope, holder: Holder, credentials: Credentials, reason: str = ""
    ) -> Erased:
        async with audit.failures_recorded(self._pool, caller, audit.Action.HOLDER_ERASE, RESOURCE):
            # A refused request is recorded too (how many problems, never the value).
            email, phone = lookup_keys(holder, self._region)
            reason = check_reason(reason)
            async with tenant_transaction(self._pool, caller) as conn:
                erased, batches = await self._erase(conn, caller, email, phone, credentials, reason)
            if erased.records_cancelled:
                async with tenant_transaction(self._pool, caller) as conn:
                    await complete_batches(conn, caller.tenant_id, batches)
            return erased

    async def _erase(
        self,
        conn: asyncpg.Connection,
        caller: TenantScope,
        email: str | None,
        phone: str | None,
        credentials: Credentials,
        reason: str,
    ) -> tuple[Erased, list[uuid.UUID]]:
        """The erasure in the caller's transaction; what it did and the batches it touched."""
        rows = await conn.fetch(_LOCK, email, phone)
        by_batch: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for row in rows:
            by_batch[row["batch_id"]].append(row["id"])
        revoked = 0
        if credentials is Credentials.REVOKE:
            for batch_id in sorted(by_batch):
                revocable = [
                    row["id"]
                    for row in rows
                    if row["batch_id"] == batch_id
                    and RecordState(row["state"]) in REVOCABLE_RECORD_STATES
                ]
                if not revocable:
                    continue
                outcome = await revoke_records(conn, batch_id, revocable, reason)
                if isinstance(outcome, Unrevocable):
                    # Locked above and revocable by state: only a missing credential refuses.
                    raise Internal("a holder's issued record has no credential to revoke")
                revoked += outcome
        open_states = sorted(state.value for state in _OPEN)
        status = await conn.execute(_CANCEL, [row["id"] for row in rows], open_states)
        cancelled = int(status.rsplit(" ", 1)[1])
        erased: int = await conn.fetchval(_ERASE, [row["id"] for row in rows])
        batches = sorted(by_batch)
        await audit.record(
            conn,
            caller,
            audit.Action.HOLDER_ERASE,
            RESOURCE,
            details={
                "by": "email" if email is not None else "phone",
                "credentials": credentials.value,
                "records_erased": erased,
                "credentials_revoked": revoked,
                "records_cancelled": cancelled,
                "batches": [f"batches/{b}" for b in batches[:100]],
            },
        )
        return Erased(erased, revoked, cancelled, len(batches)), batches
