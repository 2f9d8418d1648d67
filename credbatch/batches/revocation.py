"""Revoking issued credentials: the records become REVOKED and their status list entries set.

Both happen in the caller's one transaction, so a verifier never sees a revoked entry for a
record still shown as valid, or the reverse. The signed list token is not touched here: the
``status_lists_bits_changed`` trigger makes it due, and the workers' refresher signs it
again, so verifiers see the revocation within the token's ttl.

Lock order, as in ``docs/architecture.md``: the ``records`` rows first, in id order
(the order the issuance worker locks them), then the ``status_lists`` rows, in list id order.
Nobody locks a record while holding a status list: the allocator reserves indexes in a short
transaction of its own, and the refresher locks only ``status_list_tokens`` rows, skipping
locked ones (the trigger's update of such a row waits for the refresher's commit, never the
other way round).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from credbatch.batches.model import REVOCABLE_RECORD_STATES, RecordState
from credbatch.signing.status_list import INVALID

# An id may name a record or its credential (the report's credential_id column): the records
# matching either, with their state and status list entry, locked in id order. FOR UPDATE OF r
# re-reads each row after waiting for its lock, so the state returned is the committed one.
_LOCK_NAMED = """
SELECT r.id, c.id AS credential_id, r.state, c.status_list_id, c.status_index
FROM records r
LEFT JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1
  AND (r.id = ANY ($2::uuid[]) OR c.id = ANY ($2::uuid[]))
ORDER BY r.id
FOR UPDATE OF r
"""
# Every revocable record of the batch (READ COMMITTED re-checks the state after a lock wait).
_LOCK_ALL = """
SELECT r.id, c.id AS credential_id, r.state, c.status_list_id, c.status_index
FROM records r
JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.state = ANY ($2::text[])
ORDER BY r.id
FOR UPDATE OF r
"""
_LOCK_LIST = """
SELECT bits, bits_per_entry FROM status_lists
WHERE tenant_id = app_tenant() AND id = $1
FOR UPDATE
"""
_STORE_LIST = """
UPDATE status_lists SET bits = $2, updated_at = now()
WHERE tenant_id = app_tenant() AND id = $1
"""
_MARK = """
UPDATE records
SET state = 'REVOKED', revoke_reason = CASE WHEN purged_at IS NULL THEN $2 END,
    revoked_at = now(), updated_at = now()
WHERE tenant_id = app_tenant() AND id = ANY ($1::uuid[])
"""


@dataclass(frozen=True)
class Unrevocable:
    """Requested ids the batch cannot revoke: unknown to it, or without an issued credential."""

    unknown: tuple[uuid.UUID, ...]
    not_issued: tuple[uuid.UUID, ...]

    def __bool__(self) -> bool:
        return bool(self.unknown or self.not_issued)


@dataclass(frozen=True)
class _Entry:
    record_id: uuid.UUID
    list_id: uuid.UUID
    index: int


def set_status(bits: bytearray, index: int, value: int, bits_per_entry: int = 1) -> None:
    """Set entry ``index`` of ``bits`` to ``value`` in place (least significant bits first, as
    the Token Status List draft orders them and ``status_list.get_status`` reads them)."""
    mask = (1 << bits_per_entry) - 1
    if not 0 <= value <= mask:
        raise ValueError(f"status {value} does not fit {bits_per_entry} bits")
    byte, shift = divmod(index * bits_per_entry, 8)
    bits[byte] = (bits[byte] & ~(mask << shift)) | (value << shift)


async def revoke_records(
    conn: asyncpg.Connection,
    batch_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    reason: str,
) -> int | Unrevocable:
    """Revoke the named records of the batch (every revocable one when ``ids`` is empty).

    Returns how many records this call revoked (records already REVOKED are left as they are),
    or, when some ids cannot be revoked, which ones: then nothing is changed, and the caller
    should roll the transaction back (the records stay locked until it ends).
    """
    if ids:
        rows = await conn.fetch(_LOCK_NAMED, batch_id, list(ids))
        found = {row["id"] for row in rows} | {row["credential_id"] for row in rows}
        unknown = tuple(i for i in ids if i not in found)
        not_issued = tuple(
            row["id"]
            for row in rows
            if row["credential_id"] is None
            or RecordState(row["state"]) not in REVOCABLE_RECORD_STATES | {RecordState.REVOKED}
        )
        refused = Unrevocable(unknown, not_issued)
        if refused:
            return refused
        rows = [row for row in rows if RecordState(row["state"]) is not RecordState.REVOKED]
    else:
        states = sorted(state.value for state in REVOCABLE_RECORD_STATES)
        rows = await conn.fetch(_LOCK_ALL, batch_id, states)
    entries = [_Entry(row["id"], row["status_list_id"], row["status_index"]) for row in rows]
    if not entries:
        return 0
    await _set_invalid(conn, entries)
    await conn.execute(_MARK, [entry.record_id for entry in entries], reason)
    return len(entries)


async def _set_invalid(conn: asyncpg.Connection, entries: Sequence[_Entry]) -> None:
    """Set every entry's status to INVALID: one read and one write per list, lists in id order."""
    by_list: dict[uuid.UUID, list[int]] = {}
    for entry in entries:
        by_list.setdefault(entry.list_id, []).append(entry.index)
    for list_id in sorted(by_list):
        row = await conn.fetchrow(_LOCK_LIST, list_id)
        if row is None:  # the credentials foreign key makes this impossible
            raise LookupError(f"status list {list_id} not found")
        bits, per_entry = bytearray(row["bits"]), int(row["bits_per_entry"])
        for index in by_list[list_id]:
            set_status(bits, index, INVALID, per_entry)
        await conn.execute(_STORE_LIST, list_id, bytes(bits))
