"""`credbatch demo` (`make demo`): the whole flow against a running `make run`.

Mints an org_admin token for a fresh tenant, gives it a profile (name in three languages,
logo, colours, support contact: what holders and wallets see of the issuer), creates a schema
that requires a certificate, an email and a certificate template, turns the schema's sample
CSV into a 1,000-row file, uploads it, watches it to completion, downloads the report, finds
the invitation emails the SMTP sink stored, downloads one certificate from its Cred_URL and
one claim page. One row in fifty is addressed at a domain the development SMTP sink bounces:
the demo waits for those bounces to reach their records, then corrects the first bounced
address and sends that invitation again (UpdateRecordContact), showing the record invited
anew and the bounced invitation's claim link answering 410. Everything it produces goes to
one directory, whose paths it prints at the end. Uses the CLI's own modules, no subprocess.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import click
import grpc
import httpx
from google.protobuf import field_mask_pb2, json_format
from PIL import Image, ImageDraw, ImageFont

from credbatch.auth.tokens import mint_dev_token
from credbatch.cli.client import (
    EXIT_ERROR,
    CliError,
    Endpoint,
    address_option,
    channel,
    describe,
    resolve,
)
from credbatch.cli.output import note, out, table
from credbatch.cli.report import download
from credbatch.cli.sample_csv import fetch_sample
from credbatch.cli.schemas import create_schema
from credbatch.cli.status import watch_with_progress
from credbatch.cli.templates import create_template, preview_bytes, render_preview
from credbatch.cli.upload import UploadOptions, send
from credbatch.config import ConfigError, load_settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.templates.v1 import (
    credential_schema_pb2,
    templates_pb2,
    templates_service_pb2_grpc,
)
from credbatch.gen.tenants.v1 import tenant_pb2, tenants_service_pb2, tenants_service_pb2_grpc
from credbatch.gen.uploads.v1 import uploads_service_pb2_grpc

SCHEMA = credential_schema_pb2.CredentialSchema(
    display_name="Course completion",
    description="Completion of a training course, with a PDF certificate.",
    requires_certificate=True,
    attributes=[
        credential_schema_pb2.Attribute(
            name="full_name",
            type=credential_schema_pb2.ATTRIBUTE_TYPE_STRING,
            required=True,
            description="Holder's full name as printed on the certificate",
        ),
        credential_schema_pb2.Attribute(
            name="course",
            type=credential_schema_pb2.ATTRIBUTE_TYPE_ENUM,
            required=True,
            enum_values=["Data Protection", "First Aid", "Fire Safety"],
            description="Course completed",
        ),
        credential_schema_pb2.Attribute(
            name="completed_on",
            type=credential_schema_pb2.ATTRIBUTE_TYPE_DATE,
            required=True,
            description="Date of completion",
        ),
        credential_schema_pb2.Attribute(
            name="score",
            type=credential_schema_pb2.ATTRIBUTE_TYPE_INTEGER,
            required=False,
            description="Final score out of 100",
        ),
    ],
)


def demo_logo() -> bytes:
    """A logo drawn here, so the demo needs no file: a navy badge with a white check mark
    beside the academy's name (a PNG, which the certificates can draw too)."""
    image = Image.new("RGBA", (240, 72), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 68, 68), radius=12, fill="#1f4e79")
    draw.line((18, 37, 31, 50, 54, 22), fill="#ffffff", width=8, joint="curve")
    draw.text((80, 24), "Training Academy", fill="#1f4e79", font=ImageFont.load_default(18))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


PROFILE = tenant_pb2.TenantProfile(
    display_name="Example Training Academy",
    localized_display_names={"de": "Beispiel-Trainingsakademie", "fr": "Académie Exemple"},
    logo=tenant_pb2.Logo(content=demo_logo()),
    primary_color="#1f4e79",
    background_color="#eef4fb",
    support_email="help@academy.example",
    support_url="https://academy.example/help",
    default_locale="en",
    email_sender_name="Example Training Academy",
    reply_to="registrar@academy.example",
)
PROFILE_FIELDS = [
    "display_name",
    "localized_display_names",
    "logo",
    "primary_color",
    "background_color",
    "support_email",
    "support_url",
    "default_locale",
    "email_sender_name",
    "reply_to",
]

EMAIL_TEMPLATE = templates_pb2.EmailTemplate(
    display_name="Course certificate invitation",
    subject="Your {{ course }} certificate is ready",
    html_body=(
        "<p>Hello {{ full_name }},</p><p>you completed <b>{{ course }}</b> on "
        '{{ completed_on }}. Claim your credential: <a href="{{ claim_url }}">'
        '{{ claim_url }}</a></p><p>Your certificate: <a href="{{ Cred_URL }}">PDF</a></p>'
    ),
    text_body=(
        "Hello {{ full_name }},\n\nyou completed {{ course }} on {{ completed_on }}.\n"
        "Claim your credential: {{ claim_url }}\nYour certificate: {{ Cred_URL }}\n"
    ),
)

CERTIFICATE_TEMPLATE = templates_pb2.CertificateTemplate(
    display_name="Course certificate",
    title="Certificate of completion",
    body=(
        "This certifies that\n\n{{ full_name }}\n\nhas completed the course {{ course }} "
        "on {{ completed_on }}.\n\n{{ issuer_name }}"
    ),
    layout=templates_pb2.CertificateLayout(
        page_size=templates_pb2.PAGE_SIZE_A4,
        orientation=templates_pb2.ORIENTATION_LANDSCAPE,
        primary_color="#1F4E79",
        text_color="#222222",
        background_color="#FFFFFF",
    ),
)


# make run's sinks bounce mail to this domain (CREDBATCH_DEV_BOUNCE_PATTERN).
BOUNCE_DOMAIN = "bounce.example"
# How long the demo waits, after the batch completed, for the bounces of its rows to arrive.
BOUNCE_WAIT_SECONDS = 10.0


def bounces(row: int) -> bool:
    """Whether the demo addresses row ``row`` (from 0) to the bouncing domain."""
    return row % 50 == 7


def make_rows(sample_csv: bytes, rows: int, run_id: str) -> bytes:
    """`rows` data rows from the sample's header and example row.

    Recipients must be unique within a file, so each row gets its own address (tagged with the
    run id, to find this run's emails in the sink); names vary too, other values are the
    sample's own (valid by construction). One row in fifty is addressed at ``BOUNCE_DOMAIN``,
    which ``make run``'s SMTP sink bounces, so the demo shows bounces arriving.
    """
    reader = csv.reader(io.StringIO(sample_csv.decode("utf-8-sig")))
    header = next(reader)
    example = next(reader)
    courses = [str(v) for v in SCHEMA.attributes[1].enum_values]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i in range(rows):
        row = []
        for column, value in zip(header, example, strict=True):
            key = column.strip().lower()
            if key == "email":
                domain = BOUNCE_DOMAIN if bounces(i) else "example.org"
                value = f"holder{i:04d}.{run_id}@{domain}"
            elif key == "phone":
                value = f"+1202555{i:04d}"
            elif key == "full_name":
                value = f"Holder {i:04d}"
            elif key == "course":
                value = courses[i % len(courses)]
            elif key == "score":
                value = str(50 + i % 51)
            row.append(value)
        writer.writerow(row)
    return buffer.getvalue().encode()


def await_bounces(
    stub: batches_service_pb2_grpc.BatchStatusServiceStub,
    name: str,
    metadata: tuple[tuple[str, str], ...],
    expected: int,
    batch: batch_pb2.Batch,
) -> batch_pb2.Batch:
    """The batch once ``expected`` of its records bounced, or as it is after
    ``BOUNCE_WAIT_SECONDS`` (a system without a bounce receiver reports none)."""
    deadline = time.monotonic() + BOUNCE_WAIT_SECONDS
    while batch.record_counts.bounced < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=metadata)
    return batch


# How long the demo waits for a corrected record's new invitation to go out.
RESEND_WAIT_SECONDS = 30.0


def corrected_address(address: str) -> str:
    """The demo's correction of a bounced address: the same mailbox at the domain that works."""
    return address.rpartition("@")[0] + "@example.org"


def correct_and_resend(
    stub: batches_service_pb2_grpc.BatchStatusServiceStub,
    batch_name: str,
    record: dict[str, str],
    metadata: tuple[tuple[str, str], ...],
) -> batch_pb2.Batch:
    """Correct one bounced record's email (UpdateRecordContact sends its invitation again, at
    the new address, with a new claim link) and return the batch once the record is INVITED
    again and no longer counted bounced, or as it is after ``RESEND_WAIT_SECONDS``."""
    response = stub.UpdateRecordContact(
        batches_service_pb2.UpdateRecordContactRequest(
            name=f"{batch_name}/records/{record['record_id']}",
            email=corrected_address(record["email"]),
            update_mask=field_mask_pb2.FieldMask(paths=["email"]),
        ),
        metadata=metadata,
        timeout=30,
    )
    bounced_before = response.batch.record_counts.bounced
    batch = response.batch
    deadline = time.monotonic() + RESEND_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.5)
        batch = stub.GetBatch(
            batches_service_pb2.GetBatchRequest(name=batch_name), metadata=metadata
        )
        counts = batch.record_counts
        if counts.invited == batch.total_records and counts.bounced < bounced_before + 1:
            break
    return batch


def emails_to(mail_dir: Path, address: str, since: float) -> list[Path]:
    """The .eml files the SMTP sink stored for ``address`` since ``since``, oldest first."""
    if not mail_dir.is_dir():
        return []
    marker = f"\r\nTo: {address}\r\n".encode()
    found = [
        path
        for path in mail_dir.glob("*.eml")
        if path.stat().st_mtime >= since - 1 and marker in path.read_bytes()
    ]
    return sorted(found, key=lambda path: path.stat().st_mtime)


def find_emails(mail_dir: Path, run_id: str, since: float) -> list[Path]:
    """The .eml files the SMTP sink stored for this run."""
    if not mail_dir.is_dir():
        return []
    marker = run_id.encode()
    return sorted(
        path
        for path in mail_dir.glob("*.eml")
        if path.stat().st_mtime >= since - 1 and marker in path.read_bytes()
    )


def claim_link(email_file: Path) -> str:
    """The claim page link of an invitation email, empty when it has none."""
    message = message_from_bytes(email_file.read_bytes(), policy=email_policy.default)
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    found = re.search(r"https?://\S+/claim/[A-Za-z0-9_-]+", text)
    return found.group(0) if found else ""


def fetch_claim_page(claim_url: str) -> str:
    try:
        page = httpx.get(claim_url, timeout=30, headers={"Accept-Language": "de"})
    except httpx.HTTPError as error:
        raise CliError(f"cannot open the claim page at {claim_url}: {error}") from None
    if page.status_code != 200:
        raise CliError(f"{claim_url} answered {page.status_code}")
    return page.text


def _call(endpoint: Endpoint, what: str) -> CliError:
    return CliError(f"demo stopped at {what}", EXIT_ERROR)


@click.command()
@click.option("--rows", default=1000, show_default=True, help="Rows in the generated CSV.")
@click.option("--sms", is_flag=True, help="Invite by SMS as well as email.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put what the demo produces (default .local/demo/<time>).",
)
@click.option(
    "--mail-dir",
    default=".local/mail",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the development SMTP sink stores emails.",
)
@click.option("--sms-dir", default=".local/sms", show_default=True, type=click.Path(path_type=Path))
@click.option("--public-url", envvar="CREDBATCH_PUBLIC_URL", default="", help="Public HTTP base.")
@address_option("templates")
@address_option("uploads")
@address_option("batches")
@address_option("tenants")
def demo(
    rows: int,
    sms: bool,
    out_dir: Path | None,
    mail_dir: Path,
    sms_dir: Path,
    public_url: str,
    templates_addr: str,
    uploads_addr: str,
    batches_addr: str,
    tenants_addr: str,
) -> None:
    """Run the end-to-end demo against a running `make run`."""
    started = time.time()
    try:
        settings = load_settings()
    except ConfigError as error:
        raise CliError(f"configuration error: {error}") from None
    if not settings.development:
        raise CliError("the demo mints development tokens: run it in development mode")
    run_id = uuid.uuid4().hex[:8]
    tenant = uuid.uuid4()
    token = mint_dev_token(
        settings, tenant=tenant, sub="demo-admin", roles=["org_admin"], departments=["training"]
    )
    directory = out_dir or Path(".local/demo") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True, exist_ok=True)
    produced: list[tuple[str, Path]] = []
    (directory / "token.txt").write_text(token + "\n")
    produced.append(("org_admin token", directory / "token.txt"))
    note(f"tenant {tenant} (org_admin token in {directory / 'token.txt'})")

    templates_ep = resolve("templates", token, templates_addr)
    uploads_ep = resolve("uploads", token, uploads_addr)
    batches_ep = resolve("batches", token, batches_addr)
    tenants_ep = resolve("tenants", token, tenants_addr)
    mediums = [medium_pb2.MEDIUM_EMAIL] + ([medium_pb2.MEDIUM_SMS] if sms else [])

    # First: the schema's type metadata takes the profile of its first issuance.
    with channel(tenants_ep) as chan:
        try:
            profile = tenants_service_pb2_grpc.TenantServiceStub(chan).UpdateTenantProfile(
                tenants_service_pb2.UpdateTenantProfileRequest(
                    tenant_profile=PROFILE,
                    update_mask=field_mask_pb2.FieldMask(paths=PROFILE_FIELDS),
                ),
                metadata=tenants_ep.metadata,
                timeout=30,
            )
        except grpc.RpcError as error:
            raise describe(error, tenants_ep) from None
    note(f"profile: {profile.display_name}, logo at {profile.logo.uri}")

    with channel(templates_ep) as chan:
        stub = templates_service_pb2_grpc.TemplateServiceStub(chan)
        try:
            schema = create_schema(stub, SCHEMA, templates_ep.metadata)
            note(f"schema {schema.name} ({schema.display_name}, certificate required)")
            email = create_template(
                stub, "email", EMAIL_TEMPLATE, schema.name, templates_ep.metadata
            )
            certificate = create_template(
                stub, "certificate", CERTIFICATE_TEMPLATE, schema.name, templates_ep.metadata
            )
            note(f"templates {email.name}, {certificate.name}")
            preview = render_preview(stub, certificate.name, schema.name, {}, templates_ep.metadata)
            sample = fetch_sample(stub, schema.name, mediums, templates_ep.metadata)
        except grpc.RpcError as error:
            raise describe(error, templates_ep) from None
    schema_path = directory / "schema.json"
    schema_path.write_text(json_format.MessageToJson(schema, preserving_proto_field_name=True))
    preview_path = directory / "certificate-preview.pdf"
    preview_path.write_bytes(preview_bytes(preview))
    sample_path = directory / (sample.filename or "sample.csv")
    sample_path.write_bytes(sample.content)
    csv_path = directory / f"batch-{rows}.csv"
    csv_path.write_bytes(make_rows(sample.content, rows, run_id))
    produced += [
        ("schema", schema_path),
        ("certificate preview", preview_path),
        ("sample CSV", sample_path),
        (f"{rows:,}-row CSV", csv_path),
    ]

    with channel(uploads_ep) as chan:
        try:
            response = send(
                uploads_service_pb2_grpc.UploadServiceStub(chan),
                csv_path,
                UploadOptions(
                    schema=schema.name,
                    mediums=mediums,
                    email_template=email.name,
                    certificate_template=certificate.name,
                    request_id=str(uuid.uuid4()),
                ),
                uploads_ep.metadata,
            )
        except grpc.RpcError as error:
            raise describe(error, uploads_ep) from None
    batch_name = response.batch.name
    note(f"uploaded {csv_path.name}: {batch_name} with {response.batch.total_records:,} records")

    report_path = directory / "report.csv"
    with channel(batches_ep) as chan:
        stub_b = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        try:
            final = watch_with_progress(stub_b, batch_name, batches_ep.metadata)
            final = await_bounces(
                stub_b, batch_name, batches_ep.metadata, sum(map(bounces, range(rows))), final
            )
            download(stub_b, batch_name, [], batches_ep.metadata, report_path)
        except grpc.RpcError as error:
            raise describe(error, batches_ep) from None
    produced.append(("report", report_path))

    with report_path.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    invited = [r for r in records if r.get("state", "").upper().endswith("INVITED")]
    bounced_rows = [r for r in records if r.get("email_delivery") == "DELIVERY_STATE_BOUNCED"]
    for row in bounced_rows:
        note(f"row {row['row_number']}: email bounced ({row['delivery_code']})")

    # Correct the first bounced address and send its invitation again: the holder gets a new
    # claim link at the new address, and the link the bounced email carried stops working.
    resend_lines: list[str] = []
    if bounced_rows:
        first = bounced_rows[0]
        old_emails = emails_to(mail_dir, first["email"], started)
        old_link = claim_link(old_emails[0]) if old_emails else ""
        with channel(batches_ep) as chan:
            stub_b = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
            try:
                final = correct_and_resend(stub_b, batch_name, first, batches_ep.metadata)
                after_path = directory / "report-after-resend.csv"
                download(stub_b, batch_name, [], batches_ep.metadata, after_path)
            except grpc.RpcError as error:
                raise describe(error, batches_ep) from None
        produced.append(("report after the correction and resend", after_path))
        with after_path.open(newline="", encoding="utf-8") as handle:
            row = next(r for r in csv.DictReader(handle) if r["record_id"] == first["record_id"])
        new_emails = emails_to(mail_dir, corrected_address(first["email"]), started)
        if new_emails:
            shutil.copyfile(new_emails[-1], directory / "resent-invitation.eml")
            produced.append(
                ("the corrected record's new invitation", directory / "resent-invitation.eml")
            )
        old_status = httpx.get(old_link, timeout=30).status_code if old_link else 0
        resend_lines = [
            f"row {first['row_number']} corrected and resent: now "
            f"{row['state'].removeprefix('RECORD_STATE_')}, email "
            f"{row['email_delivery'].removeprefix('DELIVERY_STATE_') or 'not sent yet'}, "
            f"{len(new_emails)} invitation(s) at the new address",
            "the bounced invitation's claim link now answers "
            + (str(old_status) if old_status else "nothing (none found)"),
        ]
        for line in resend_lines:
            note(line)
    cred_url = next((r["cred_url"] for r in invited if r.get("cred_url")), "")

    certificate_path = directory / "certificate.pdf"
    if cred_url:
        try:
            got = httpx.get(cred_url, timeout=30, follow_redirects=True)
        except httpx.HTTPError as error:
            raise CliError(f"cannot download the certificate at {cred_url}: {error}") from None
        if got.status_code != 200 or not got.content.startswith(b"%PDF"):
            raise CliError(f"{cred_url} answered {got.status_code}, not a PDF")
        certificate_path.write_bytes(got.content)
        produced.append(("one certificate (from its Cred_URL)", certificate_path))
        note(f"certificate downloaded from {cred_url}")

    emails = find_emails(mail_dir, run_id, started)
    if emails:
        shutil.copyfile(emails[0], directory / "invitation.eml")
        produced.append(("one invitation email", directory / "invitation.eml"))
        claim_url = claim_link(emails[0])
        if claim_url:
            claim_path = directory / "claim.html"
            claim_path.write_text(fetch_claim_page(claim_url), encoding="utf-8")
            produced.append(("one claim page (as a German browser sees it)", claim_path))

    counts = final.record_counts
    table(
        f"{final.name}: {batch_pb2.BatchState.Name(final.state).removeprefix('BATCH_STATE_')}",
        [
            "records",
            "invited",
            "failed",
            "cancelled",
            "delivered",
            "bounced",
            "emails in the sink",
            "seconds",
        ],
        [
            [
                f"{final.total_records:,}",
                f"{counts.invited:,}",
                f"{counts.failed:,}",
                f"{counts.cancelled:,}",
                f"{counts.delivered:,}",
                f"{counts.bounced:,}",
                f"{len(emails):,}",
                f"{time.time() - started:.1f}",
            ]
        ],
    )
    out.print("Produced:")
    for label, path in produced:
        out.print(f"  {label:<40} {path}")
    out.print(
        f"Emails the SMTP sink received: {mail_dir.resolve()}/ ({len(emails):,} for this run)"
    )
    if sms:
        out.print(f"SMS messages the SMS sink received: {sms_dir.resolve()}/")
    if public_url or settings.public_url:
        out.print(f"Public endpoints: {public_url or settings.public_url}")
    for line in resend_lines:
        out.print(line)
    if counts.invited != rows or len(invited) != rows:
        raise CliError(
            f"expected {rows:,} INVITED records, got {counts.invited:,} "
            f"({len(invited):,} in the report)"
        )
    if not cred_url:
        raise CliError("no INVITED record carries a Cred_URL in the report")
    out.print(f"[green]{rows:,} records INVITED[/green]")
