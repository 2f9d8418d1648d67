"""The per-record report of a batch as CSV, streamed in chunks with constant memory.

Rows are read in pages, ranges of row numbers over (batch, row_number) (the records' unique
key), each page in its own short read-only transaction, so a slow client holds neither a
connection nor a snapshot between pages. PostgreSQL writes each page as CSV itself (``COPY
(SELECT ...) TO STDOUT``, the tenant's row-level security applying as to any query): the
service forwards bytes with no Python step per row or cell, and holds a few pages at most.

A record whose personal data was erased (its batch's retention period ran out, or an org
admin erased the holder) says so on its row: ``purged_at`` is when, ``purge_reason`` why
(``RETENTION`` or ``ERASURE``); its email, phone and error message are empty and its
certificate link is gone, while its state, credential id and times remain.

Cells that a spreadsheet would evaluate are escaped the OWASP way, with a leading single quote;
the file is also read by programs, so nothing else is touched. A signed plain number, such as
a phone number in E.164 (+14155550123) or -3.5, is only a number to a spreadsheet and is kept.
``escape_cell`` states the rule; the page query applies the same rule in SQL
(``escape_cell_sql``), and a test holds the two equal.

The bytes are what Python's ``csv`` module writes: CRLF after each record, quotes only around
cells holding a comma, a quote or a line break, empty cells unquoted. COPY ends records with
LF and quotes an empty string, so empty cells are sent as NULL, and each record's LF (never
one inside a quoted cell) becomes CRLF.

Each chunk holds whole rows: a client may decode and parse every chunk as it arrives, since no
row, and so no UTF-8 sequence, is ever split between two chunks. States are spelled as the
protos spell them (RECORD_STATE_INVITED, DELIVERY_STATE_BOUNCED), the one spelling clients
meet everywhere.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg

from credbatch.batches.model import RecordState
from credbatch.tenancy import TenantScope, tenant_transaction

CHUNK_BYTES = 1024 * 1024
PAGE_ROWS = 10_000
READ_AHEAD = 2
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
    "purged_at",
    "purge_reason",
    "reminders_sent",
)
_FORMULA_STARTS = ("=", "@", "\t", "\r")
_SIGNS = ("+", "-")
# ASCII digits only: `\d` also matches digits of other scripts, which a spreadsheet does not
# read as a number, so it would parse such a cell as a formula.
_SIGNED_NUMBER = re.compile(r"[+-](?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def escape_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it, never evaluates (OWASP CSV injection)."""
    if value.startswith(_FORMULA_STARTS) or (
        value.startswith(_SIGNS) and _SIGNED_NUMBER.fullmatch(value) is None
    ):
        return "'" + value
    return value


def escape_cell_sql(expression: str) -> str:
    """SQL of ``escape_cell`` applied to a text ``expression``; NULL for NULL or ''.

    ``ascii`` reads the first character's code without copying the text (61 ``=``, 64 ``@``,
    9 tab, 13 CR; 43 ``+``, 45 ``-``), and the pattern runs only on cells that start with a
    sign.
    """
    e = f"({expression})"
    return (
        f"NULLIF(CASE WHEN ascii({e}) IN (61, 64, 9, 13) OR (ascii({e}) IN (43, 45)"
        f" AND {e} !~ '^[+-]([0-9]+(\\.[0-9]*)?|\\.[0-9]+)$')"
        f" THEN '''' || {e} ELSE {e} END, '')"
    )


_MESSAGE = "CASE WHEN r.state = 'REVOKED' THEN r.revoke_reason ELSE r.error_message END"
# The code that explains a refusal: the bounce's enhanced status or the SMS provider's error;
# a bounced email's first (an address is the likelier fix).
_DELIVERY_CODE = (
    "CASE WHEN r.email_delivery IN ('BOUNCED', 'DEFERRED') THEN r.email_delivery_code"
    " WHEN r.sms_delivery IN ('BOUNCED', 'FAILED') THEN r.sms_delivery_code END"
)


def _utc_text(column: str) -> str:
    """SQL of a timestamp as Python's isoformat() in UTC with a Z: a fraction only when it is
    not zero."""
    return (
        f"replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " '.000000Z', 'Z')"
    )


# A revoked record's only message is why it was revoked. $5 is the certificate links' common
# start, already escaped: the rest of a link follows a slash, so a link is never a number and
# is escaped exactly when its start is. A channel nothing was sent on has no delivery state
# (NULL, an empty cell). A phone is E.164 or NULL (records_phone_check), a signed number that
# escape_cell keeps as it is, so it is sent as stored: the pattern of escape_cell_sql would
# otherwise run on every phone, a sixth of the page's CPU.
#
# A record's credential, certificate and reminder count are each a probe of a unique key per
# record, not joins: a join's strategy is chosen from the number of records the planner
# expects in the page's range, and on a long history of small batches it expects one from any
# range of a large batch (the row numbers' statistics are the small batches'), so the same
# page was nested loops rescanning the joined tables per row there and hash joins on a
# younger database, which read the tenant's whole credentials table once they hold a row per
# record. A probe per record is the right plan wherever they do, so it is the only one.
# Each probe runs only when the batch can have such rows, decided once per page in the page's
# own snapshot (each test a subquery of its own, an InitPlan): a credential and a reminder row
# carry their record's batch (written from the record), so a batch with none has no record
# with one; a certificate carries no batch, so its probes run when the tenant has any.
_PAGE = f"""
SELECT r.row_number, {escape_cell_sql("r.email")}, r.phone,
       'RECORD_STATE_' || r.state, 'DELIVERY_STATE_' || r.email_delivery,
       'DELIVERY_STATE_' || r.sms_delivery, {escape_cell_sql(_DELIVERY_CODE)},
       CASE WHEN (SELECT EXISTS (SELECT 1 FROM credentials c
                                 WHERE c.tenant_id = app_tenant() AND c.batch_id = $1))
            THEN (SELECT c.id FROM credentials c
                  WHERE c.tenant_id = r.tenant_id AND c.record_id = r.id) END,
       CASE WHEN (SELECT EXISTS (SELECT 1 FROM certificates cert
                                 WHERE cert.tenant_id = app_tenant()))
            THEN $5::text || (SELECT cert.id FROM certificates cert
                              WHERE cert.tenant_id = r.tenant_id AND cert.record_id = r.id) END,
       {escape_cell_sql("r.error_code")}, {escape_cell_sql(_MESSAGE)},
       {_utc_text("r.updated_at")}, r.id, {_utc_text("r.contact_updated_at")},
       {_utc_text("r.purged_at")}, r.purge_reason,
       -- Empty when the batch has no reminder schedule (no record of it has a reminder row).
       CASE WHEN (SELECT EXISTS (SELECT 1 FROM record_reminders m
                                 WHERE m.tenant_id = app_tenant() AND m.batch_id = $1))
            THEN (SELECT m.sent FROM record_reminders m
                  WHERE m.tenant_id = r.tenant_id AND m.record_id = r.id) END
FROM records r
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.row_number > $2
  AND r.row_number <= $4 AND ($3::text[] IS NULL OR r.state = ANY ($3::text[]))
ORDER BY r.row_number
"""
# A page's estimated cost (its probes counted per expected record) can pass jit_above_cost,
# and compiling its expressions took longer than running them: 30-80 ms of backend CPU a
# page of 10,000 rows, more than the page's own work.
_NO_JIT = "SET LOCAL jit = off"
_LAST_ROW = """
SELECT max(row_number) FROM records WHERE tenant_id = app_tenant() AND batch_id = $1
"""


def crlf_records(page: bytes) -> bytes:
    """COPY's CSV ``page`` with CRLF record ends.

    A record ends at an LF outside quotes: one with an even number of quotes before it in the
    page, since quotes inside a quoted cell come doubled. Split at the quotes, the pieces at
    even positions are those outside; an LF inside a cell stays as it is. Quotes are rare (a
    cell holding a comma, a quote or a line break), so the page is a few pieces, each
    replaced at C speed, not a loop over its rows.
    """
    pieces = page.split(b'"')
    pieces[::2] = [piece.replace(b"\n", b"\r\n") for piece in pieces[::2]]
    return b'"'.join(pieces)


def record_end(buffer: bytes | bytearray, limit: int) -> int:
    """Where the last whole record within ``buffer[:limit]`` ends (after its CRLF); when the
    first record is longer than ``limit``, where that one ends; 0 when no record ends.

    A CRLF ends a record when an even number of quotes precede it (one inside a quoted cell
    has an odd number before it).
    """
    at = buffer.rfind(b"\r\n", 0, limit)
    while at != -1:
        if buffer.count(b'"', 0, at) % 2 == 0:
            return at + 2
        at = buffer.rfind(b"\r\n", 0, at)
    at = buffer.find(b"\r\n", limit - 1 if limit > 0 else 0)
    while at != -1:
        if buffer.count(b'"', 0, at) % 2 == 0:
            return at + 2
        at = buffer.find(b"\r\n", at + 1)
    return 0


async def _page(pool: asyncpg.Pool, scope: TenantScope, arguments: tuple[object, ...]) -> bytes:
    """The records of one range of rows as CSV with CRLF record ends."""
    parts: list[bytes] = []

    async def collect(data: bytes) -> None:
        parts.append(data)

    async with tenant_transaction(pool, scope, readonly=True) as conn:
        await conn.execute(_NO_JIT)
        await conn.copy_from_query(_PAGE, *arguments, output=collect, format="csv")
    return crlf_records(b"".join(parts))


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

    Pages are ranges of ``page_rows`` row numbers, so no page waits for the one before it to
    know where it starts (a batch's rows are numbered from 1 on; rows erased since only make
    a page smaller). The next
    ``READ_AHEAD`` pages are read, each on its own connection, while the current one is sent:
    the database works on several cores and at the same time as the stream, and at most
    ``READ_AHEAD`` + 1 pages are held.

    The caller has checked that the batch is visible (an invisible batch has no visible
    records either, so the report would only be a header).
    """
    link_start = escape_cell(f"{public_url.rstrip('/')}/c/")
    wanted = sorted({s.value for s in states}) or None
    async with tenant_transaction(pool, scope, readonly=True) as conn:
        last_row: int = await conn.fetchval(_LAST_ROW, batch_id) or 0
    starts = iter(range(0, last_row, page_rows))

    def read_next() -> asyncio.Task[bytes] | None:
        start = next(starts, None)
        if start is None:
            return None
        arguments = (batch_id, start, wanted, start + page_rows, link_start)
        return asyncio.ensure_future(_page(pool, scope, arguments))

    pending = bytearray(",".join(COLUMNS).encode() + b"\r\n")
    reading: collections.deque[asyncio.Task[bytes]] = collections.deque()
    try:
        while len(reading) < READ_AHEAD and (task := read_next()) is not None:
            reading.append(task)
        while reading:
            page = await reading.popleft()
            if (task := read_next()) is not None:
                reading.append(task)
            pending += page
            del page
            # Pages hold whole records, so pending always ends with one.
            while len(pending) > chunk_bytes:
                end = record_end(pending, chunk_bytes)
                yield bytes(pending[:end])
                del pending[:end]
    finally:
        # The caller stopped reading (or a page failed): the pages read ahead are not wanted.
        for task in reading:
            task.cancel()
        for task in reading:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if pending:
        yield bytes(pending)
