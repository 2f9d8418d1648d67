"""Storing an accepted upload: the batch, its records (the job outbox) and its request id.

Everything happens in one short tenant transaction, opened once the whole file was read and
found valid (its rows wait in ``services.uploads.spool``): the request id claimed with the batch
row and its total, in one statement (the records' foreign key and RLS policy need the batch
before them, so they cannot join it), then the records in
groups of ``GROUP_ROWS`` through ``INSERT ... SELECT FROM unnest(...)`` (COPY is refused on
RLS tables). A failure rolls it all back: nothing is ever half visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

import asyncpg

from credbatch.batches.model import UploadedBatch
from credbatch.db import idempotency
from credbatch.errors import Internal
from services.uploads.spool import SpooledRow

IDEMPOTENCY_KIND = "batch"
GROUP_ROWS = 2000

_INSERT_RECORDS = """
INSERT INTO records (tenant_id, id, batch_id, row_number, email, phone, attributes)
SELECT app_tenant(), gen_random_uuid(), $1, u.n, u.email, u.phone, u.attributes::jsonb
FROM unnest($2::int[], $3::text[], $4::text[], $5::text[]) AS u(n, email, phone, attributes)
"""

REQUEST_ID_FIELD = "header.request_id"


@dataclass(frozen=True)
class NewBatch(UploadedBatch):
    """The batch row of an accepted upload."""

    validity_seconds: int | None
    traceparent: str | None
    total_records: int
    reminder_days: tuple[int, ...] = ()  # empty: the tenant's default
    reminder_email_template_id: uuid.UUID | None = None
    reminder_sms_template_id: uuid.UUID | None = None


async def find_request(
    conn: asyncpg.Connection, request_id: str, digest: bytes | None = None
) -> uuid.UUID | None:
    """The batch an earlier upload with this request id created, if any.

    Raises:
        AlreadyExists: REQUEST_ID_REUSED, ``digest`` is given and the earlier upload's differs.
    """
    return await idempotency.find(conn, IDEMPOTENCY_KIND, request_id, REQUEST_ID_FIELD, digest)


_BATCH_COLUMNS = """
INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums,
                     email_template_id, sms_template_id, certificate_template_id,
                     creator, department, filename, total_records,
                     credential_validity_seconds, traceparent, claim_mode,
                     reminder_days, reminder_email_template_id, reminder_sms_template_id)
"""
_BATCH_VALUES = """
app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $14, $11, $12, $13,
-- The upload's schedule, else the tenant's default as it is now.
coalesce($15::integer[], (SELECT p.reminder_days FROM tenant_profiles p
                          WHERE p.tenant_id = app_tenant())),
$16, $17
"""
_INSERT_BATCH = _BATCH_COLUMNS + "VALUES (" + _BATCH_VALUES + ")"
# The request id claimed and the batch inserted in one statement (one round trip, not two):
# the batch only when the claim returned its row, i.e. the key is this transaction's now.
_CLAIM_AND_INSERT_BATCH = (
    f"WITH claim AS ({idempotency.claim_sql(18)})\n"
    + _BATCH_COLUMNS
    + "SELECT "
    + _BATCH_VALUES
    + "WHERE EXISTS (SELECT FROM claim)\nRETURNING id"
)


async def insert_batch(
    conn: asyncpg.Connection,
    batch: NewBatch,
    request_id: str | None = None,
    digest: bytes | None = None,
) -> uuid.UUID | None:
    """The batch row, QUEUED, with the total of the records the same transaction writes; with
    a ``request_id``, reserved for the batch in the same statement (credbatch.db.idempotency),
    keeping the request's ``digest`` (services.uploads.digest).

    The file was read whole before its transaction opens, so the total is known here: no
    second statement (and no run of the batches' update trigger) to set it afterwards.

    Returns:
        None when the batch is inserted; otherwise the id of the batch that already holds
        ``request_id``, and nothing is inserted.

    Raises:
        AlreadyExists: REQUEST_ID_REUSED, the batch that holds it was another request.
    """
    args = (
        batch.id,
        batch.schema_id,
        batch.schema_version,
        list(batch.mediums),
        batch.email_template_id,
        batch.sms_template_id,
        batch.certificate_template_id,
        batch.creator,
        batch.department,
        batch.filename,
        batch.validity_seconds,
        batch.traceparent,
        batch.claim_mode.value,
        batch.total_records,
        list(batch.reminder_days) or None,
        batch.reminder_email_template_id,
        batch.reminder_sms_template_id,
    )
    if request_id is None:
        await conn.execute(_INSERT_BATCH, *args)
        return None
    claim = (IDEMPOTENCY_KIND, request_id, batch.id, digest)
    # A second round only if the key that refused the claim was pruned before it was read.
    for _ in range(2):
        if await conn.fetchval(_CLAIM_AND_INSERT_BATCH, *args, *claim) is not None:
            return None
        holder = await find_request(conn, request_id, digest)
        if holder is not None:
            return holder
    raise Internal("the request id was neither claimed nor held by an earlier upload")


async def set_total(conn: asyncpg.Connection, batch_id: uuid.UUID, total: int) -> None:
    """The total of a batch whose records were written while its file was still validated
    (inserted with 0: the total was not known yet), in the same transaction."""
    await conn.execute(
        "UPDATE batches SET total_records = $2 WHERE tenant_id = app_tenant() AND id = $1",
        batch_id,
        total,
    )


class RecordWriter:
    """Writes spooled rows in groups, overlapping each INSERT with reading the next group.

    One INSERT is in flight at a time (a connection runs one statement at a time); while
    PostgreSQL inserts a group, the event loop goes on reading the next one from the spool.
    """

    def __init__(self, conn: asyncpg.Connection, batch_id: uuid.UUID) -> None:
        self._conn = conn
        self._batch_id = batch_id
        self._rows: list[int] = []
        self._emails: list[str | None] = []
        self._phones: list[str | None] = []
        self._attributes: list[str] = []
        self._in_flight: asyncio.Task[None] | None = None
        self.written = 0

    async def add(self, row: SpooledRow) -> None:
        # records.row_number is the data row (header excluded): spreadsheet row - 1.
        self._rows.append(row.row - 1)
        self._emails.append(row.email)
        self._phones.append(row.phone)
        self._attributes.append(row.attributes_json)
        if len(self._rows) >= GROUP_ROWS:
            await self._flush()

    async def _flush(self) -> None:
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None
        if not self._rows:
            return
        group = (self._rows, self._emails, self._phones, self._attributes)
        self._rows, self._emails, self._phones, self._attributes = [], [], [], []
        self.written += len(group[0])
        self._in_flight = asyncio.ensure_future(self._insert(*group))

    async def _insert(
        self, rows: list[int], emails: list[str | None], phones: list[str | None], attrs: list[str]
    ) -> None:
        await self._conn.execute(_INSERT_RECORDS, self._batch_id, rows, emails, phones, attrs)

    async def close(self) -> None:
        """Write what is buffered and wait for every INSERT."""
        await self._flush()
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None

    async def discard(self) -> None:
        """Stop the INSERT in flight at once: the upload failed and its transaction rolls back.

        Without this the rollback would meet a statement still running on the connection
        (asyncpg refuses it, masking the upload's own error) and the task would outlive it.
        """
        self._rows, self._emails, self._phones, self._attributes = [], [], [], []
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                await task
