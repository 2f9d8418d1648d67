"""The upload flow: request rules, then the file validated while it streams, then storage.

No database connection is held while the client streams. The header is resolved in one
short transaction (an earlier upload with the request id, else the schema and templates);
the file is then received as fast as the client sends it (``services.uploads.read_ahead``)
and validated, its accepted rows spooled to a temporary file (``services.uploads.spool``).
The records are stored in ONE tenant transaction, opened only once the client's stream has
ended: request id and batch row (one statement), then records group by group from the
spool, following the validation while it still runs, then the batch's total, commit. A
problem found in the file, at any point, rolls it all back; the first one stops the spooling
(the rest of the file is only validated, for the report); an invalid, too large or stalled
file creates nothing. A slow client therefore costs a stream and a tenant slot
(``services.uploads.admission``), never a pooled connection; a fast client's file is stored
while its end is still being validated. Memory is bounded by a chunk, a group of rows and
the kept problems.

A small file (``WHOLE_FILE_BYTES``) is read whole first, still with no connection held, as
the stream brings it; then the header's look-up, the validation and the store run in ONE
transaction, three round trips fewer than the two transactions a larger file takes (the
look-up's BEGIN and COMMIT, and its read of the request id the store's claim repeats). The
outcome is the same either way: the same checks, in the same order after the request rules.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from opentelemetry import trace

from credbatch import audit
from credbatch.batches.model import BatchView
from credbatch.batches.repository import batch_view, get_batch
from credbatch.config import Settings
from credbatch.db.idempotency import reused_error
from credbatch.db.retry import retry_on_conflict
from credbatch.errors import AlreadyExists, Internal
from credbatch.messaging import trace_headers
from credbatch.metrics import UPLOAD_ROWS, UPLOAD_SIZE
from credbatch.names import BATCHES, SCHEMAS, format_name
from credbatch.telemetry import span_without_data
from credbatch.tenancy import TenantScope, tenant_transaction
from services.uploads import quota, repository
from services.uploads.admission import TenantUploadSlots
from services.uploads.digest import RequestDigest
from services.uploads.look_up import read_header
from services.uploads.model import CheckedRequest, ResolvedUpload, UploadRequest
from services.uploads.parallel import validate_file
from services.uploads.read_ahead import ReadAhead
from services.uploads.report_error import MAX_VIOLATIONS, invalid_file_error
from services.uploads.request_rules import check_request, resolve
from services.uploads.spool import RowSpool
from services.uploads.validation_pool import ValidationPool
from services.uploads.validator import FileValidator, Report

_tracer = trace.get_tracer(__name__)

FULL_REPORT_ERRORS = 10_000
"""Problems returned by validate_only; error_count always counts them all."""

WHOLE_FILE_BYTES = 16 * 1024
"""A file whose stream ends within this many bytes is read before the database is asked
anything, then looked up, validated and stored in one transaction (``Uploader._whole``): a
connection is then held while such a file is validated in this process (a few hundred rows at
most; tens of milliseconds when they are all phone numbers, the slowest), never while a
client sends."""


@dataclass(frozen=True)
class UploadOutcome:
    """The batch created (None with validate_only) and the validation report."""

    batch: BatchView | None
    report: Report


Validated = Report | asyncio.Future[Report]
"""A file's validation report, or the validation still running (its future)."""


def _report_if_known(validated: Validated) -> Report | None:
    if isinstance(validated, Report):
        return validated
    return validated.result() if validated.done() else None


class _RequestTaken(Exception):
    def __init__(self, batch_id: uuid.UUID) -> None:
        super().__init__(str(batch_id))
        self.batch_id = batch_id


class Uploader:
    """Runs uploads against one database pool with the process settings."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        validation: ValidationPool | None = None,
    ) -> None:
        """``validation``: the processes that validate large files' blocks (None: this
        process validates every file)."""
        self._settings = settings
        self._pool = pool
        self._validation = validation
        self._slots = TenantUploadSlots(settings.upload_max_concurrent_per_tenant)

    def _validator(self, resolved: ResolvedUpload, keep: int) -> FileValidator:
        return FileValidator(
            resolved.schema,
            resolved.request.mediums,
            default_region=self._settings.default_region,
            max_rows=self._settings.max_rows,
            max_bytes=self._settings.max_bytes,
            keep_errors=keep,
        )

    async def upload(
        self, caller: TenantScope, request: UploadRequest, chunks: AsyncIterator[bytes]
    ) -> UploadOutcome:
        """Validate the file and, unless validate_only, store it as a batch.

        Raises:
            InvalidArgument: a request rule failed, or the file is invalid (first problems
                listed, total in the ErrorInfo).
            ResourceExhausted: the file is over the row or byte limit, or the tenant already
                runs its maximum of concurrent uploads in this process.
            NotFound, PermissionDenied: schema/template/department problems.

        An upload that stores a batch is audited in the batch's transaction; one refused
        (except a validate_only one, which changes nothing either way) after the fact. A
        repeat of a committed request_id changes nothing and is not audited again.
        """
        if request.validate_only:
            return await self._upload(caller, request, chunks)
        async with audit.failures_recorded(
            self._pool,
            caller,
            audit.Action.BATCH_UPLOAD,
            BATCHES,
            request_id=request.request_id,
        ):
            return await self._upload(caller, request, chunks)

    async def _upload(
        self, caller: TenantScope, request: UploadRequest, chunks: AsyncIterator[bytes]
    ) -> UploadOutcome:
        checked = check_request(request, caller)
        with (
            self._slots.hold(caller.tenant_id),
            span_without_data(
                _tracer,
                "credbatch.upload",
                attributes={
                    "credbatch.upload.validate_only": checked.validate_only,
                    "credbatch.upload.mediums": sorted(m.value for m in checked.mediums),
                },
            ) as span,
        ):
            if checked.validate_only:
                async with tenant_transaction(self._pool, caller) as conn:
                    resolved = await resolve(conn, checked)
                validator = self._validator(resolved, FULL_REPORT_ERRORS)
                try:
                    await validate_file(validator, chunks, self._validation)
                finally:
                    _record(span, validator)
                return UploadOutcome(None, validator.report())
            head, rest = await _read_ahead(chunks, WHOLE_FILE_BYTES)
            if rest is None:
                return await self._whole(caller, checked, head, span)
            chunks = _chained(head, rest)
            digest = RequestDigest(checked)
            found = await self._look_up(caller, checked)
            if isinstance(found, BatchView):
                # A retry is answered only when it is the same request: the whole file is
                # read (not validated again) to compare its digest with the first one's.
                same = await digest.consume(chunks, self._settings.max_bytes)
                if same is None:
                    raise reused_error(repository.REQUEST_ID_FIELD)
                await self._earlier(caller, checked.request_id or "", digest=same)
                span.set_attribute("credbatch.upload.retry", True)
                span.set_attribute("credbatch.batch_id", str(found.id))
                return UploadOutcome(found, Report(found.total, 0, ()))
            resolved = found
            names = [attribute.name for attribute in resolved.schema.attributes]
            with (
                RowSpool(names, self._settings.max_bytes) as spool,
                ReadAhead(self._settings.max_bytes) as ahead,
            ):
                ahead.start(digest.through(chunks))
                validating = asyncio.ensure_future(
                    self._spool(resolved, ahead.chunks(), spool, span)
                )
                try:
                    await asyncio.wait(
                        (validating, ahead.receiving), return_when=asyncio.FIRST_COMPLETED
                    )
                    if not ahead.complete:
                        # The file failed before it was all here (too large, invalid early,
                        # the stream broken): the validation raises why.
                        await validating
                        raise Internal("an upload's stream failed but its validation did not")
                    # The whole file is here (and its digest known), so the store may start
                    # while the rest is validated. The spool keeps every row, so the store
                    # (one transaction) can run again on a conflict; the stream cannot.
                    return await retry_on_conflict(
                        lambda: self._store(
                            caller, resolved, spool, validating, span, digest.digest()
                        )
                    )
                except _RequestTaken as taken:
                    return await self._taken(caller, checked, taken, span)
                finally:
                    # A store that failed first (or an earlier batch answered) leaves the
                    # validation nothing to do; what it raised, if anything, is no news.
                    if not validating.done():
                        validating.cancel()
                        await asyncio.wait((validating,))
                    if not validating.cancelled():
                        validating.exception()

    async def _spool(
        self,
        resolved: ResolvedUpload,
        chunks: AsyncIterator[bytes],
        spool: RowSpool,
        span: trace.Span,
    ) -> Report:
        """Validate the whole file, spooling its accepted rows until the first problem.

        Raises:
            InvalidArgument: the file is invalid.
            ResourceExhausted: over the row or byte limit.
        """
        validator = self._validator(resolved, MAX_VIOLATIONS)
        try:
            await validate_file(validator, chunks, self._validation, spool)
            report = validator.report()
        finally:
            _record(span, validator)
        if not report.valid:
            raise invalid_file_error(report)
        if spool.rows != report.rows_total:
            raise Internal("spooled rows do not match the rows read")
        return report

    async def _store(
        self,
        caller: TenantScope,
        resolved: ResolvedUpload,
        spool: RowSpool,
        validated: Validated,
        span: trace.Span,
        digest: bytes,
    ) -> UploadOutcome:
        async with tenant_transaction(self._pool, caller) as conn:
            outcome = await self._write(conn, caller, resolved, spool, validated, digest)
        assert outcome.batch is not None
        span.set_attribute("credbatch.batch_id", str(outcome.batch.id))
        return outcome

    async def _whole(
        self, caller: TenantScope, checked: CheckedRequest, content: list[bytes], span: trace.Span
    ) -> UploadOutcome:
        """A file that arrived whole with its header (at most ``WHOLE_FILE_BYTES``): looked
        up, validated and stored in ONE transaction, where a larger file takes two, the
        stream read between them with no connection held. A conflict runs it all again from
        the file in memory.

        Raises:
            As ``upload``.
        """
        try:
            outcome = await retry_on_conflict(
                lambda: self._look_up_and_store(caller, checked, content, span)
            )
        except _RequestTaken as taken:
            return await self._taken(caller, checked, taken, span)
        assert outcome.batch is not None
        span.set_attribute("credbatch.batch_id", str(outcome.batch.id))
        return outcome

    async def _taken(
        self, caller: TenantScope, checked: CheckedRequest, taken: _RequestTaken, span: trace.Span
    ) -> UploadOutcome:
        """The answer when a concurrent upload with the same request id (and request)
        committed first: the batch it created."""
        span.set_attribute("credbatch.upload.retry", True)
        batch = await self._earlier(caller, checked.request_id or "", taken.batch_id)
        if batch is None:
            raise self._foreign_request() from None
        return UploadOutcome(batch, Report(batch.total, 0, ()))

    async def _look_up_and_store(
        self, caller: TenantScope, checked: CheckedRequest, content: list[bytes], span: trace.Span
    ) -> UploadOutcome:
        digest = RequestDigest(checked)
        async with tenant_transaction(self._pool, caller) as conn:
            found = await read_header(conn, checked)
            if found.earlier is not None and checked.request_id is not None:
                # A retry is answered only when it is the same request.
                same = await digest.consume(_chained(content), self._settings.max_bytes)
                if same is None:
                    raise reused_error(repository.REQUEST_ID_FIELD)
                earlier = await self._find_earlier(conn, checked.request_id, digest=same)
                if earlier is not None:
                    span.set_attribute("credbatch.upload.retry", True)
                    return UploadOutcome(earlier, Report(earlier.total, 0, ()))
                # The key was pruned meanwhile: a new upload after all.
                digest = RequestDigest(checked)
            resolved = await resolve(conn, checked, found)
            names = [attribute.name for attribute in resolved.schema.attributes]
            with RowSpool(names, self._settings.max_bytes) as spool:
                report = await self._spool(resolved, digest.through(_chained(content)), spool, span)
                return await self._write(conn, caller, resolved, spool, report, digest.digest())

    async def _write(
        self,
        conn: asyncpg.Connection,
        caller: TenantScope,
        resolved: ResolvedUpload,
        spool: RowSpool,
        validated: Validated,
        digest: bytes,
    ) -> UploadOutcome:
        """The store's statements, in the caller's transaction ``conn``; with ``validated``
        still running, the records are written as it spools them, and the batch's total
        once it is known.

        Raises:
            _RequestTaken: another upload holds the request id (roll back, then read it).
            What the validation raises (the transaction then rolls back).
        """
        checked = resolved.request
        batch_id = uuid.uuid4()
        known = _report_if_known(validated)
        holder = await repository.insert_batch(
            conn,
            repository.NewBatch(
                id=batch_id,
                schema_id=resolved.schema.schema_id,
                schema_version=resolved.schema.version,
                mediums=tuple(sorted(m.value for m in checked.mediums)),
                email_template_id=resolved.email_template_id,
                sms_template_id=resolved.sms_template_id,
                certificate_template_id=resolved.certificate_template_id,
                creator=caller.user_id,
                department=checked.department,
                filename=checked.filename,
                claim_mode=checked.claim_mode,
                validity_seconds=resolved.validity_seconds,
                traceparent=trace_headers.inject({}).get("traceparent"),
                total_records=0 if known is None else known.rows_total,
                reminder_days=checked.reminder_days,
                reminder_email_template_id=checked.reminder_email_template_id,
                reminder_sms_template_id=checked.reminder_sms_template_id,
            ),
            checked.request_id,
            digest,
        )
        if holder is not None:
            raise _RequestTaken(holder)
        writer = repository.RecordWriter(conn, batch_id)
        try:
            if known is not None:
                for row in spool:
                    await writer.add(row)
            else:
                assert isinstance(validated, asyncio.Future)
                async for row in spool.follow(validated):
                    await writer.add(row)
            await writer.close()
        except BaseException:
            await writer.discard()
            raise
        report = known or _report_if_known(validated)
        assert report is not None
        if writer.written != report.rows_total:
            raise Internal("stored rows do not match the rows read")
        if known is None:
            await repository.set_total(conn, batch_id, report.rows_total)
        # The quota check, the audit entry and the batch's view in one statement (one
        # round trip); over the quota, the raise rolls the entry back with the batch.
        answer = await audit.record_alongside(
            conn,
            quota.OPEN_RECORDS_AND_BATCH,
            (self._settings.default_max_open_records, batch_id),
            caller,
            audit.Action.BATCH_UPLOAD,
            format_name(BATCHES, batch_id),
            details={
                "records": report.rows_total,
                "schema": format_name(SCHEMAS, resolved.schema.schema_id),
                "schema_version": resolved.schema.version,
                "mediums": sorted(m.value for m in checked.mediums),
            },
            request_id=checked.request_id or "",
        )
        quota.check_open_records(answer)
        view = await batch_view(conn, answer) if answer is not None else None
        if view is None:
            raise Internal("the new batch is not visible to its creator")
        return UploadOutcome(view, report)

    async def _look_up(
        self, caller: TenantScope, checked: CheckedRequest
    ) -> BatchView | ResolvedUpload:
        """Before the file is read, in one transaction: the batch an earlier upload with the
        request id created (a retry), else the request's schema and templates; all three
        read by one statement (``look_up``), the rest only when it found nothing.

        Raises:
            As ``_earlier`` and ``resolve``.
        """
        async with tenant_transaction(self._pool, caller) as conn:
            found = await read_header(conn, checked)
            if found.earlier is not None:
                earlier = await self._find_earlier(conn, checked.request_id or "", found.earlier)
                assert earlier is not None  # _find_earlier raises rather than answer None
                return earlier
            return await resolve(conn, checked, found)

    async def _earlier(
        self,
        caller: TenantScope,
        request_id: str,
        batch_id: uuid.UUID | None = None,
        *,
        digest: bytes | None = None,
    ) -> BatchView | None:
        """The batch an earlier upload with ``request_id`` created, if any.

        Raises:
            AlreadyExists: REQUEST_ID_REUSED, ``digest`` differs from the earlier upload's;
                REQUEST_ID_IN_USE, the earlier upload is another user's, not visible here.
        """
        async with tenant_transaction(self._pool, caller, readonly=True) as conn:
            return await self._find_earlier(conn, request_id, batch_id, digest=digest)

    async def _find_earlier(
        self,
        conn: asyncpg.Connection,
        request_id: str,
        batch_id: uuid.UUID | None = None,
        *,
        digest: bytes | None = None,
    ) -> BatchView | None:
        found = batch_id or await repository.find_request(conn, request_id, digest)
        if found is None:
            return None
        view = await get_batch(conn, found)
        if view is None:
            raise self._foreign_request()
        return view

    @staticmethod
    def _foreign_request() -> AlreadyExists:
        # Another user of the tenant used this request id; its batch is not visible here.
        return AlreadyExists(
            "request_id was already used for another upload", reason="REQUEST_ID_IN_USE"
        )


async def _read_ahead(
    chunks: AsyncIterator[bytes], limit: int
) -> tuple[list[bytes], AsyncIterator[bytes] | None]:
    """The stream's first chunks, until they pass ``limit`` bytes, and the rest of the
    stream; None for the rest when the stream ended within the limit (the file is whole)."""
    source = aiter(chunks)
    head: list[bytes] = []
    size = 0
    while size <= limit:
        try:
            chunk = await anext(source)
        except StopAsyncIteration:
            return head, None
        head.append(chunk)
        size += len(chunk)
    return head, source


async def _chained(
    head: list[bytes], rest: AsyncIterator[bytes] | None = None
) -> AsyncIterator[bytes]:
    for chunk in head:
        yield chunk
    if rest is not None:
        async for chunk in rest:
            yield chunk


def _record(span: trace.Span, validator: FileValidator) -> None:
    # Counts only: never a cell, a recipient or a message quoting the file.
    span.set_attribute("credbatch.upload.rows_total", validator.rows_total)
    span.set_attribute("credbatch.upload.error_count", validator.report().error_count)
    UPLOAD_ROWS.add(validator.rows_total)
    UPLOAD_SIZE.add(validator.bytes_read)
