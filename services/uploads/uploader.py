"""The upload flow: request rules, then the file validated while it streams, then storage.

validate_only reads the file without a transaction. An accepted upload runs in ONE tenant
transaction opened before the file is read: batch row, records written group by group while
later rows are still being validated, total, commit. The first problem stops the writing (the
rest of the file is only validated, for the report) and the transaction rolls back: an
invalid file creates nothing. Memory is bounded by a chunk, a group of rows and the kept
problems, never by the file.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from opentelemetry import trace

from credbatch.batches.model import BatchView
from credbatch.batches.repository import get_batch
from credbatch.config import Settings
from credbatch.errors import AlreadyExists, Internal
from credbatch.messaging import trace_headers
from credbatch.metrics import UPLOAD_ROWS, UPLOAD_SIZE
from credbatch.telemetry import span_without_data
from credbatch.tenancy import TenantScope, tenant_transaction
from services.uploads import quota, repository
from services.uploads.model import CheckedRequest, ResolvedUpload, UploadRequest
from services.uploads.report_error import MAX_VIOLATIONS, invalid_file_error
from services.uploads.request_rules import check_request, resolve
from services.uploads.validator import FileValidator, Report

_tracer = trace.get_tracer(__name__)

FULL_REPORT_ERRORS = 10_000
"""Problems returned by validate_only; error_count always counts them all."""


@dataclass(frozen=True)
class UploadOutcome:
    """The batch created (None with validate_only) and the validation report."""

    batch: BatchView | None
    report: Report


class _RequestTaken(Exception):
    def __init__(self, batch_id: uuid.UUID) -> None:
        super().__init__(str(batch_id))
        self.batch_id = batch_id


class Uploader:
    """Runs uploads against one database pool with the process settings."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._settings = settings
        self._pool = pool

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
            ResourceExhausted: the file is over the row or byte limit.
            NotFound, PermissionDenied: schema/template/department problems.
        """
        checked = check_request(request, caller)
        with span_without_data(
            _tracer,
            "credbatch.upload",
            attributes={
                "credbatch.upload.validate_only": checked.validate_only,
                "credbatch.upload.mediums": sorted(m.value for m in checked.mediums),
            },
        ) as span:
            if checked.validate_only:
                async with tenant_transaction(self._pool, caller) as conn:
                    resolved = await resolve(conn, checked)
                validator = self._validator(resolved, FULL_REPORT_ERRORS)
                try:
                    async for chunk in chunks:
                        for _ in validator.feed(chunk):
                            pass
                    for _ in validator.finish():
                        pass
                finally:
                    _record(span, validator)
                return UploadOutcome(None, validator.report())
            if checked.request_id is not None:
                earlier = await self._earlier(caller, checked.request_id)
                if earlier is not None:
                    span.set_attribute("credbatch.upload.retry", True)
                    span.set_attribute("credbatch.batch_id", str(earlier.id))
                    return UploadOutcome(earlier, Report(earlier.total, 0, ()))
            try:
                return await self._store(caller, checked.request_id, span, chunks, checked)
            except _RequestTaken as taken:
                # A concurrent upload with the same request id committed first.
                span.set_attribute("credbatch.upload.retry", True)
                batch = await self._earlier(caller, checked.request_id or "", taken.batch_id)
                if batch is None:
                    raise self._foreign_request() from None
                return UploadOutcome(batch, Report(batch.total, 0, ()))

    async def _store(
        self,
        caller: TenantScope,
        request_id: str | None,
        span: trace.Span,
        chunks: AsyncIterator[bytes],
        checked: CheckedRequest,
    ) -> UploadOutcome:
        batch_id = uuid.uuid4()
        async with tenant_transaction(self._pool, caller) as conn:
            resolved = await resolve(conn, checked)
            if request_id is not None:
                holder = await repository.claim_request(conn, request_id, batch_id)
                if holder is not None:
                    raise _RequestTaken(holder)
            await repository.insert_batch(
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
                    validity_seconds=resolved.validity_seconds,
                    traceparent=trace_headers.inject({}).get("traceparent"),
                ),
            )
            validator = self._validator(resolved, MAX_VIOLATIONS)
            writer = repository.RecordWriter(conn, batch_id)
            writing = True
            try:
                async for chunk in chunks:
                    for row in validator.feed(chunk):
                        if writing:
                            await writer.add(row)
                    if writing and validator.has_errors:
                        writing = False
                        await writer.abandon()
                for row in validator.finish():
                    if writing and not validator.has_errors:
                        await writer.add(row)
                report = validator.report()
            except BaseException:
                await writer.discard()
                raise
            finally:
                _record(span, validator)
            if not report.valid:
                await writer.abandon()
                raise invalid_file_error(report)
            await writer.close()
            if writer.written != report.rows_total:
                raise Internal("stored rows do not match the rows read")
            await quota.check_open_records(conn, self._settings.default_max_open_records)
            await repository.finish_batch(conn, batch_id, report.rows_total)
            view = await get_batch(conn, batch_id)
            if view is None:
                raise Internal("the new batch is not visible to its creator")
        span.set_attribute("credbatch.batch_id", str(batch_id))
        return UploadOutcome(view, report)

    async def _earlier(
        self, caller: TenantScope, request_id: str, batch_id: uuid.UUID | None = None
    ) -> BatchView | None:
        async with tenant_transaction(self._pool, caller, readonly=True) as conn:
            found = batch_id or await repository.find_request(conn, request_id)
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


def _record(span: trace.Span, validator: FileValidator) -> None:
    # Counts only: never a cell, a recipient or a message quoting the file.
    span.set_attribute("credbatch.upload.rows_total", validator.rows_total)
    span.set_attribute("credbatch.upload.error_count", validator.report().error_count)
    UPLOAD_ROWS.add(validator.rows_total)
    UPLOAD_SIZE.add(validator.bytes_read)
