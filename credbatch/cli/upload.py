"""`credbatch upload FILE --schema … --medium …`: stream a CSV, show validation problems."""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import grpc
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from credbatch.cli.client import (
    EXIT_INVALID,
    CliError,
    Endpoint,
    address_option,
    bad_request,
    channel,
    describe,
    error_info,
    resolve,
    resource_name,
    token_option,
)
from credbatch.cli.mediums import medium_option, to_mediums
from credbatch.cli.output import err, note, out, table
from credbatch.cli.tenant import day_list
from credbatch.gen.common.v1 import claim_mode_pb2, medium_pb2
from credbatch.gen.uploads.v1 import (
    uploads_service_pb2,
    uploads_service_pb2_grpc,
    validation_report_pb2,
)

CHUNK_BYTES = 1024 * 1024
# ErrorInfo reason of a file that failed validation (its BadRequest names rows and columns).
INVALID_FILE = "INVALID_FILE"
# How many problems the terminal table shows; --errors-out holds them all.
TABLE_LIMIT = 50


CLAIM_MODES: dict[str, claim_mode_pb2.ClaimMode] = {
    "oid4vci": claim_mode_pb2.CLAIM_MODE_OID4VCI,
    "download": claim_mode_pb2.CLAIM_MODE_DOWNLOAD,
}


@dataclass(frozen=True)
class UploadOptions:
    """What the upload header says, apart from the file itself."""

    schema: str
    mediums: list[medium_pb2.Medium]
    email_template: str = ""
    sms_template: str = ""
    certificate_template: str = ""
    department: str = ""
    request_id: str = ""
    claim_mode: claim_mode_pb2.ClaimMode = claim_mode_pb2.CLAIM_MODE_UNSPECIFIED
    reminder_days: tuple[int, ...] = ()  # empty: the tenant's default
    reminder_email_template: str = ""
    reminder_sms_template: str = ""


@dataclass(frozen=True)
class Problem:
    """One validation problem as the table and the errors file show it."""

    row: int
    column: str
    code: str
    message: str


def _requests(
    path: Path, header: uploads_service_pb2.UploadBatchHeader, advance: Callable[[int], None]
) -> Iterator[uploads_service_pb2.UploadBatchRequest]:
    yield uploads_service_pb2.UploadBatchRequest(header=header)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield uploads_service_pb2.UploadBatchRequest(chunk=chunk)
            advance(len(chunk))


def _header(
    path: Path, options: UploadOptions, validate_only: bool
) -> uploads_service_pb2.UploadBatchHeader:
    def named(collection: str, value: str) -> str:
        return resource_name(collection, value) if value else ""

    return uploads_service_pb2.UploadBatchHeader(
        schema=resource_name("schemas", options.schema),
        mediums=options.mediums,
        email_template=named("emailTemplates", options.email_template),
        sms_template=named("smsTemplates", options.sms_template),
        certificate_template=named("certificateTemplates", options.certificate_template),
        department=options.department,
        filename=path.name,
        request_id=options.request_id,
        validate_only=validate_only,
        claim_mode=options.claim_mode,
        reminder_days=list(options.reminder_days),
        reminder_email_template=named("emailTemplates", options.reminder_email_template),
        reminder_sms_template=named("smsTemplates", options.reminder_sms_template),
    )


def send(
    stub: uploads_service_pb2_grpc.UploadServiceStub,
    path: Path,
    options: UploadOptions,
    metadata: tuple[tuple[str, str], ...],
    *,
    validate_only: bool = False,
    show_progress: bool = True,
) -> uploads_service_pb2.UploadBatchResponse:
    """Stream the file in 1 MiB chunks; raises grpc.RpcError as the call fails."""
    header = _header(path, options, validate_only)
    size = path.stat().st_size
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not show_progress,
    ) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)

        def advance(n: int) -> None:
            progress.advance(task, n)
            if progress.tasks[task].completed >= size:
                progress.update(task, description="validating")

        return stub.UploadBatch(_requests(path, header, advance), metadata=metadata)


# The UploadService names each problem `row N, column C`, `row N`, `file, column C` or `file`.
# `rows[12].email`, ``rows[12].`Date of birth` ``, `rows[12]`, `file.email`, `file`; and the prose
# servers before field paths sent (`row 12, column email`).
_PATH = re.compile(
    r"^(?:rows\[(?P<row>\d+)\]|file)(?:\.(?:`(?P<quoted>(?:[^`]|``)+)`|(?P<column>\w+)))?$"
)
_FIELD = re.compile(r"^(?:row\s+(?P<row>\d+)|file)(?:\s*,\s*column\s+(?P<column>.+))?$", re.I)


def problem_from_violation(field: str, description: str, reason: str) -> Problem:
    """Read row and column out of a BadRequest field; other shapes keep the whole field."""
    path = _PATH.match(field.strip())
    if path is not None:
        row = int(path["row"]) if path["row"] else 0
        column = path["column"] or (path["quoted"] or "").replace("``", "`")
        return Problem(row, column, reason, description)
    match = _FIELD.match(field.strip())
    if match is None:
        return Problem(0, field, reason, description)
    row = int(match["row"]) if match["row"] else 0
    return Problem(row, (match["column"] or "").strip(), reason, description)


def problems_from_report(report: validation_report_pb2.ValidationReport) -> list[Problem]:
    return [Problem(e.row, e.column, e.code, e.message) for e in report.errors]


def show_problems(problems: list[Problem], total: int) -> None:
    shown = problems[:TABLE_LIMIT]
    table(
        f"{total:,} problem(s)" + (f", first {len(shown)} shown" if total > len(shown) else ""),
        ["row", "column", "code", "message"],
        ([p.row or "file", p.column, p.code, p.message] for p in shown),
    )


def write_problems(path: Path, problems: list[Problem]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "column", "code", "message"])
        for p in problems:
            writer.writerow([p.row, p.column, p.code, p.message])


def full_report(
    stub: uploads_service_pb2_grpc.UploadServiceStub,
    path: Path,
    options: UploadOptions,
    endpoint: Endpoint,
) -> validation_report_pb2.ValidationReport:
    """Validate again with validate_only: the error status carries only the first problems."""
    note("fetching the full report (validate only)")
    try:
        response = send(stub, path, options, endpoint.metadata, validate_only=True)
    except grpc.RpcError as error:
        raise describe(error, endpoint) from None
    return response.report


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--schema", required=True, help="schemas/ID (latest) or schemas/ID@VERSION.")
@medium_option
@click.option("--email-template", default="", help="emailTemplates/ID (default: tenant default).")
@click.option("--sms-template", default="", help="smsTemplates/ID (default: tenant default).")
@click.option("--certificate-template", default="", help="certificateTemplates/ID.")
@click.option("--department", default="", help="One of your departments (default: the first).")
@click.option("--request-id", default="", help="Idempotency key (default: a new UUID).")
@click.option(
    "--claim-mode",
    type=click.Choice(sorted(CLAIM_MODES), case_sensitive=False),
    default="oid4vci",
    show_default=True,
    help="oid4vci: offer each credential to the holder's wallet; download: a claim page "
    "download, for holders without a wallet.",
)
@click.option(
    "--reminder-days",
    default="",
    help="Remind holders who have not claimed, days after the invitation, e.g. 3,10 "
    "(default: the tenant's default).",
)
@click.option(
    "--reminder-email-template", default="", help="emailTemplates/ID of the reminder emails."
)
@click.option("--reminder-sms-template", default="", help="smsTemplates/ID of the reminder SMS.")
@click.option("--validate-only", is_flag=True, help="Validate and report; create nothing.")
@click.option(
    "--errors-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every validation problem to this CSV file.",
)
@token_option
@address_option("uploads")
def upload(
    file: Path,
    schema: str,
    mediums: tuple[str, ...],
    email_template: str,
    sms_template: str,
    certificate_template: str,
    department: str,
    request_id: str,
    claim_mode: str,
    reminder_days: str,
    reminder_email_template: str,
    reminder_sms_template: str,
    validate_only: bool,
    errors_out: Path | None,
    token: str | None,
    uploads_addr: str,
) -> None:
    """Upload a batch CSV FILE; prints the batch name."""
    options = UploadOptions(
        schema=schema,
        mediums=to_mediums(mediums),
        email_template=email_template,
        sms_template=sms_template,
        certificate_template=certificate_template,
        department=department,
        request_id=request_id or str(uuid.uuid4()),
        claim_mode=CLAIM_MODES[claim_mode.lower()],
        reminder_days=tuple(day_list(reminder_days, "--reminder-days")),
        reminder_email_template=reminder_email_template,
        reminder_sms_template=reminder_sms_template,
    )
    endpoint = resolve("uploads", token, uploads_addr)
    with channel(endpoint) as chan:
        stub = uploads_service_pb2_grpc.UploadServiceStub(chan)
        try:
            response = send(stub, file, options, endpoint.metadata, validate_only=validate_only)
        except grpc.RpcError as error:
            violations = bad_request(error)
            info = error_info(error)
            # Only a file's problems get the table; a bad header or request is one message.
            if violations is None or info is None or info.reason != INVALID_FILE:
                raise describe(error, endpoint) from None
            problems = [
                problem_from_violation(v.field, v.description, v.reason)
                for v in violations.field_violations
            ]
            total = len(problems)
            if info.metadata.get("error_count", "").isdigit():
                total = int(info.metadata["error_count"])
            assert isinstance(error, grpc.Call)
            note(f"[red]{file.name} is not valid:[/red] {error.details()}")
            show_problems(problems, total)
            if errors_out is not None:
                report = full_report(stub, file, options, endpoint)
                write_problems(errors_out, problems_from_report(report))
                note(f"wrote {report.error_count:,} problem(s) to {errors_out}")
            elif total > len(problems):
                note("use --errors-out FILE to get every problem")
            raise CliError(f"{file.name}: {total:,} validation problem(s)", EXIT_INVALID) from None
    report = response.report
    if validate_only:
        if errors_out is not None:
            write_problems(errors_out, problems_from_report(report))
            note(f"wrote {report.error_count:,} problem(s) to {errors_out}")
        if not report.valid:
            show_problems(problems_from_report(report), int(report.error_count))
            raise CliError(
                f"{file.name}: {report.error_count:,} validation problem(s)", EXIT_INVALID
            )
        note(f"{file.name} is valid: {report.rows_total:,} row(s)")
        return
    batch = response.batch
    note(f"accepted {batch.total_records:,} record(s) from {file.name}")
    out.print(batch.name)
