"""Each upload rule, through the real gRPC service and database: what is refused, and how.

Every refused file must leave the tenant without any batch.
"""

from __future__ import annotations

import asyncpg
import grpc

from tests.fixtures.grpc import error_details
from tests.fixtures.uploads import (
    EMAIL,
    HEADER,
    SMS,
    Tenant,
    batch_count,
    csv_file,
    refused,
    row,
    violations,
)

# --- request rules ---------------------------------------------------------------------


async def test_mediums_must_be_a_non_empty_set(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1)]), mediums=[])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("header.mediums", "REQUIRED") in violations(error)
    error = await refused(tenant, csv_file([row(1)]), mediums=[0])
    assert ("header.mediums[0]", "INVALID_MEDIUM") in violations(error)


async def test_schema_must_exist_in_the_callers_tenant(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1)]), schema="schemas/nope")
    assert ("header.schema", "INVALID_NAME") in violations(error)
    other = "schemas/00000000-0000-4000-8000-000000000000"
    error = await refused(tenant, csv_file([row(1)]), schema=other)
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_templates_only_with_their_medium(tenant: Tenant) -> None:
    error = await refused(
        tenant,
        csv_file([row(1)], header="email," + HEADER.split(",", 2)[2]),
        mediums=[EMAIL],
        sms_template="smsTemplates/00000000-0000-4000-8000-000000000000",
    )
    assert ("header.sms_template", "TEMPLATE_WITHOUT_MEDIUM") in violations(error)


async def test_certificate_template_required_exactly_when_the_schema_requires_one(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    content = b"email,name\r\nada@example.com,Ada\r\n"
    error = await refused(tenant, content, schema=tenant.certificate_schema, mediums=[EMAIL])
    assert ("header.certificate_template", "CERTIFICATE_TEMPLATE_REQUIRED") in violations(error)
    error = await refused(
        tenant, csv_file([row(1)]), certificate_template=tenant.certificate_template
    )
    assert ("header.certificate_template", "CERTIFICATE_NOT_ALLOWED") in violations(error)
    response = await tenant.upload(
        content,
        schema=tenant.certificate_schema,
        mediums=[EMAIL],
        certificate_template=tenant.certificate_template,
    )
    assert response.batch.certificate_template == tenant.certificate_template
    assert await batch_count(owner_pool, tenant.tenant_id) == 1


async def test_department_must_be_one_of_the_callers(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1)]), department="finance")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    response = await tenant.upload(csv_file([row(1)]), department="hr")
    assert response.batch.department == "hr"


async def test_an_issuer_without_departments_cannot_upload(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    error = await refused(tenant, csv_file([row(1)]), metadata=tenant.metadata(departments=()))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(error).info.reason == "NO_DEPARTMENT"
    assert await batch_count(owner_pool, tenant.tenant_id) == 0
    admin = tenant.metadata(roles=("org_admin",), departments=())
    response = await tenant.upload(csv_file([row(1)]), metadata=admin)
    assert response.batch.department == "default"


async def test_observers_cannot_upload(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1)]), metadata=tenant.metadata(roles=("observer",)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# --- header rules ----------------------------------------------------------------------


async def test_missing_unknown_and_duplicate_columns_each_named(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    header = " EMAIL ,phone,name,age,born,score,member,level,Name,shoe"  # no `site`
    error = await refused(tenant, csv_file([row(1) + ",x"], header=header))
    found = violations(error)
    assert ("rows[1].site", "MISSING_COLUMN") in found
    assert ("rows[1].shoe", "UNKNOWN_COLUMN") in found
    assert ("rows[1].Name", "DUPLICATE_COLUMN") in found
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_recipient_columns_follow_the_mediums(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1)]), mediums=[EMAIL])
    assert ("rows[1].phone", "UNKNOWN_COLUMN") in violations(error)
    no_email = ",".join(HEADER.split(",")[1:])
    error = await refused(tenant, csv_file([row(1)], header=no_email), mediums=[EMAIL, SMS])
    assert ("rows[1].email", "MISSING_COLUMN") in violations(error)


# --- row rules -------------------------------------------------------------------------


async def test_values_of_every_type_are_checked_with_row_and_column(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    rows = [
        row(1),
        row(2, name=""),
        row(3, age="twelve"),
        row(4, born="2023-02-30"),
        row(5, score='"1,5"'),
        row(6, member="maybe"),
        row(7, email="not-an-email"),
        row(8, phone="12"),
        row(9, site="ftp://x"),
        row(10, level="Platinum"),
    ]
    error = await refused(tenant, csv_file(rows))
    assert violations(error) == [
        ("rows[3].name", "REQUIRED_VALUE_MISSING"),
        ("rows[4].age", "INVALID_INTEGER"),
        ("rows[5].born", "INVALID_DATE"),
        ("rows[6].score", "INVALID_NUMBER"),
        ("rows[7].member", "INVALID_BOOLEAN"),
        ("rows[8].email", "INVALID_EMAIL"),
        ("rows[9].phone", "INVALID_PHONE"),
        ("rows[10].site", "INVALID_URL"),
        ("rows[11].level", "INVALID_ENUM"),
    ]
    assert error_details(error).info.metadata["error_count"] == "9"
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_international_email_domains_are_accepted(tenant: Tenant) -> None:
    response = await tenant.upload(csv_file([row(1, email="anna@b\u00fccher.de")]))
    assert response.report.valid


async def test_ragged_rows(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1), row(2) + ",extra", "a@b.co,+14155550003"]))
    assert violations(error) == [("rows[3]", "RAGGED_ROW"), ("rows[4]", "RAGGED_ROW")]
    # Trailing empty cells (spreadsheets export them) are not ragged.
    response = await tenant.upload(csv_file([row(1) + ",,"]))
    assert response.report.valid


async def test_duplicate_recipients_name_both_rows(tenant: Tenant) -> None:
    rows = [row(1), row(2, email="HOLDER1@example.com"), row(3, phone="(415) 555-0001")]
    error = await refused(tenant, csv_file(rows))
    details = error_details(error)
    assert details.bad_request is not None
    found = [(v.field, v.reason, v.description) for v in details.bad_request.field_violations]
    assert found[0][:2] == ("rows[3].email", "DUPLICATE_RECIPIENT")
    assert "row 2" in found[0][2]
    assert found[1][:2] == ("rows[4].phone", "DUPLICATE_RECIPIENT")
    assert "row 2" in found[1][2]


async def test_blank_rows_inside_are_errors_trailing_ones_ignored(tenant: Tenant) -> None:
    error = await refused(tenant, csv_file([row(1), "", row(2)]))
    assert violations(error) == [("rows[3]", "BLANK_ROW")]
    response = await tenant.upload(csv_file([row(1), "", ",,,", ""]))
    assert response.report.rows_total == 1


async def test_surrounding_spaces_trimmed_and_quoted_fields(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    content = csv_file([row(1, name='"  Doe, Jane ""JD""\nline two "')], newline="\n")
    response = await tenant.upload(content, chunk=5)
    assert response.report.valid
    name = await owner_pool.fetchval(
        "SELECT attributes->>'name' FROM records WHERE tenant_id = $1", tenant.tenant_id
    )
    assert name == 'Doe, Jane "JD"\nline two'


# --- encoding --------------------------------------------------------------------------


async def test_utf8_with_bom_is_accepted(tenant: Tenant) -> None:
    response = await tenant.upload(b"\xef\xbb\xbf" + csv_file([row(1, name="Ren\u00e9e")]))
    assert response.report.valid


async def test_other_encodings_are_refused_saying_so(
    tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    content = csv_file([row(1), row(2, name="Ren\u00e9e")]).decode().encode("latin-1")
    error = await refused(tenant, content)
    ((field, reason),) = violations(error)
    assert (field, reason) == ("rows[3]", "NOT_UTF8")
    description = error_details(error).bad_request.field_violations[0].description  # type: ignore[union-attr]
    assert "not UTF-8" in description and "byte offset" in description
    error = await refused(tenant, csv_file([row(1)]).decode().encode("utf-16"))
    assert "UTF-16" in error_details(error).bad_request.field_violations[0].description  # type: ignore[union-attr]
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_empty_file_and_header_only(tenant: Tenant) -> None:
    error = await refused(tenant, b"")
    assert violations(error) == [("file", "EMPTY_FILE")]
    error = await refused(tenant, csv_file([]))
    assert violations(error) == [("file", "NO_ROWS")]


# --- limits ----------------------------------------------------------------------------


async def test_row_limit_stops_reading(tenant: Tenant, owner_pool: asyncpg.Pool) -> None:
    limited = tenant.settings.max_rows
    content = csv_file([row(i) for i in range(limited + 5)])
    error = await refused(tenant, content, chunk=256 * 1024)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(error).info.reason == "TOO_MANY_ROWS"
    assert str(limited) in (error.details() or "")
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_byte_limit_stops_reading(tenant: Tenant) -> None:
    long_name = "n" * 400
    rows = [row(i, name=long_name) for i in range(tenant.settings.max_bytes // 400)]
    error = await refused(tenant, csv_file(rows), chunk=1 << 20)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(error).info.reason == "FILE_TOO_LARGE"
