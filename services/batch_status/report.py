"""The per-record report of a batch as CSV, streamed in chunks with constant memory.

Rows are read in pages over (batch, row_number) (the records' unique key), each page in its
own short read-only transaction, so a slow client holds neither a connection nor a snapshot
between pages. A page is a range of row numbers, not "the next N rows": the planner estimates
a batch's rows from the average batch, so on a long history with small batches it would read
a large batch's whole remainder to sort out the next N (each page costing more than the last);
a bounded range costs the same on any database. Row numbers are unique in a batch, so a range
of N row numbers holds N rows at most (fewer where a file skipped lines or states are
filtered).

A record whose personal data was erased (its batch's retention period ran out, or an org
admin erased the holder) says so on its row: ``purged_at`` is when, ``purge_reason`` why
(``RETENTION`` or ``ERASURE``); its email, phone and error message are empty and its
certificate link is gone, while its state, credential id and times remain.

Cells that a spreadsheet would evaluate are escaped the OWASP way, with a leading single quote;
the file is also read by programs, so nothing else is touched. A signed plain number, such as
a phone number in E.164 (+14155550123) or -3.5, is only a number to a spreadsheet and is kept.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg

from credbatch.batches.model import RecordState
from credbatch.tenancy import TenantScope, tenant_transaction

CHUNK_BYTES = 1024 * 1024
PAGE_ROWS = 5000
COLUMNS = (
    "row_number",
    "email",
    "phone",
    "state",
    "credential_id",
    "cred_url",
    "error_code",
    "error_message",
    "updated_at",
    "purged_at",
    "purge_reason",
)
_FORMULA_STARTS = ("=", "@", "\t", "\r")
_SIGNS = ("+", "-")
# ASCII digits only: `\d` also matches digits of other scripts, which a spreadsheet does not
# read as a number, so it would parse such a cell as a formula.
_SIGNED_NUMBER = re.compile(r"[+-](?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

_PAGE = """
SELECT r.row_number, r.email, r.phone, r.state, c.id AS credential_id,
       cert.id AS certificate_id, r.error_code,
       -- A revoked record's only message is why it was revoked.
       CASE WHEN r.state = 'REVOKED' THEN r.revoke_reason ELSE r.error_message END
         AS error_message,
       r.updated_at, r.purged_at, r.purge_reason
FROM records r
LEFT JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
LEFT JOIN certificates cert ON cert.tenant_id = r.tenant_id AND cert.record_id = r.id
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1
  AND r.row_number > $2 AND r.row_number <= $2 + $4
  AND ($3::text[] IS NULL OR r.state = ANY ($3::text[]))
ORDER BY r.row_number
"""
# The last row number: a backward probe of the same unique index.
_LAST = """
SELECT coalesce(max(row_number), 0) FROM records
WHERE tenant_id = app_tenant() AND batch_id = $1
"""


def escape_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it, never evaluates (OWASP CSV injection)."""
    if value.startswith(_FORMULA_STARTS) or (
        value.startswith(_SIGNS) and _SIGNED_NUMBER.fullmatch(value) is None
    ):
        return "'" + value
    return value


def _text(value: str | None) -> str:
    return "" if value is None else escape_cell(value)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _row(record: asyncpg.Record, public_url: str) -> list[object]:
    certificate = record["certificate_id"]
    credential = record["credential_id"]
    return [
        record["row_number"],
        _text(record["email"]),
        _text(record["phone"]),
        record["state"],
        "" if credential is None else str(credential),
        "" if certificate is None else _text(f"{public_url}/c/{certificate}"),
        _text(record["error_code"]),
        _text(record["error_message"]),
        _time(record["updated_at"]),
        "" if record["purged_at"] is None else _time(record["purged_at"]),
        record["purge_reason"] or "",
    ]


async def report_chunks(
    pool: asyncpg.Pool,
    scope: TenantScope,
    batch_id: uuid.UUID,
    states: Sequence[RecordState],
    public_url: str,
    *,
    page_rows: int = PAGE_ROWS,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """CSV bytes of the batch's records in row order, in chunks of at most ``chunk_bytes``.

    The caller has checked that the batch is visible (an invisible batch has no visible
    records either, so the report would only be a header).
    """
    base_url = public_url.rstrip("/")
    wanted = sorted({s.value for s in states}) or None
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    pending = bytearray()
    after, last = 0, None
    while last is None or after < last:
        async with tenant_transaction(pool, scope, readonly=True) as conn:
            if last is None:
                last = int(await conn.fetchval(_LAST, batch_id))
            rows = await conn.fetch(_PAGE, batch_id, after, wanted, page_rows)
        writer.writerows(_row(row, base_url) for row in rows)
        pending += text.getvalue().encode()
        text.seek(0)
        text.truncate()
        while len(pending) >= chunk_bytes:
            yield bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
        after += page_rows
    if pending:
        yield bytes(pending)
