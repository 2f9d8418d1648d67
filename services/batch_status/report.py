"""The per-record report of a batch as CSV, streamed in chunks with constant memory.

Rows are read in keyset pages over (batch, row_number) (the records' unique key), each page in
its own short read-only transaction, so a slow client holds neither a connection nor a
snapshot between pages.

Cells that a spreadsheet would evaluate are escaped the OWASP way, with a leading single quote;
the file is also read by programs, so nothing else is touched. A signed plain number, such as
a phone number in E.164 (+14155550123) or -3.5, is only a number to a spreadsheet and is kept.

Each chunk holds whole rows: a client may decode and parse every chunk as it arrives, since no
row, and so no UTF-8 sequence, is ever split between two chunks. States are spelled as the
protos spell them (RECORD_STATE_INVITED, DELIVERY_STATE_BOUNCED), the one spelling clients
meet everywhere.
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
STATE_PREFIX = "RECORD_STATE_"
DELIVERY_PREFIX = "DELIVERY_STATE_"
COLUMNS = (
    "row_number",
    "email",
    "phone",
    "state",
    "email_delivery",
    "sms_delivery",
    "delivery_code",
    "credential_id",
    "cred_url",
    "error_code",
    "error_message",
    "updated_at",
    "record_id",
    "contact_updated_at",
)
_FORMULA_STARTS = ("=", "@", "\t", "\r")
_SIGNS = ("+", "-")
# ASCII digits only: `\d` also matches digits of other scripts, which a spreadsheet does not
# read as a number, so it would parse such a cell as a formula.
_SIGNED_NUMBER = re.compile(r"[+-](?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

_PAGE = """
SELECT r.row_number, r.email, r.phone, r.state, r.email_delivery, r.sms_delivery,
       -- The code that explains a refusal: the bounce's enhanced status or the SMS
       -- provider's error; a bounced email's first (an address is the likelier fix).
       CASE WHEN r.email_delivery IN ('BOUNCED', 'DEFERRED') THEN r.email_delivery_code
            WHEN r.sms_delivery IN ('BOUNCED', 'FAILED') THEN r.sms_delivery_code
       END AS delivery_code,
       c.id AS credential_id,
       cert.id AS certificate_id, r.error_code,
       -- A revoked record's only message is why it was revoked.
       CASE WHEN r.state = 'REVOKED' THEN r.revoke_reason ELSE r.error_message END
         AS error_message,
       r.updated_at, r.id AS record_id, r.contact_updated_at
FROM records r
LEFT JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
LEFT JOIN certificates cert ON cert.tenant_id = r.tenant_id AND cert.record_id = r.id
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.row_number > $2
  AND ($3::text[] IS NULL OR r.state = ANY ($3::text[]))
ORDER BY r.row_number
LIMIT $4
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


def _delivery(value: str | None) -> str:
    """A channel's DeliveryState as the protos spell it; empty when nothing was sent."""
    return "" if value is None else DELIVERY_PREFIX + value


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _row(record: asyncpg.Record, public_url: str) -> list[object]:
    certificate = record["certificate_id"]
    credential = record["credential_id"]
    return [
        record["row_number"],
        _text(record["email"]),
        _text(record["phone"]),
        STATE_PREFIX + record["state"],
        _delivery(record["email_delivery"]),
        _delivery(record["sms_delivery"]),
        _text(record["delivery_code"]),
        "" if credential is None else str(credential),
        "" if certificate is None else _text(f"{public_url}/c/{certificate}"),
        _text(record["error_code"]),
        _text(record["error_message"]),
        _time(record["updated_at"]),
        str(record["record_id"]),
        "" if record["contact_updated_at"] is None else _time(record["contact_updated_at"]),
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
    """CSV bytes of the batch's records in row order, in chunks that end on a row boundary.

    A chunk is at most ``chunk_bytes`` long, except when a single row is longer: that row
    comes alone in a chunk of its own. The caller has checked that the batch is visible (an
    invisible batch has no visible records either, so the report would only be a header).
    """
    base_url = public_url.rstrip("/")
    wanted = sorted({s.value for s in states}) or None
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")

    def encoded(row: Sequence[object]) -> bytes:
        text.seek(0)
        text.truncate()
        writer.writerow(row)
        return text.getvalue().encode()

    pending = bytearray(encoded(COLUMNS))
    after = 0
    while True:
        async with tenant_transaction(pool, scope, readonly=True) as conn:
            rows = await conn.fetch(_PAGE, batch_id, after, wanted, page_rows)
        for row in rows:
            line = encoded(_row(row, base_url))
            if pending and len(pending) + len(line) > chunk_bytes:
                yield bytes(pending)
                pending.clear()
            pending += line
        if len(rows) < page_rows:
            break
        after = rows[-1]["row_number"]
    if pending:
        yield bytes(pending)
