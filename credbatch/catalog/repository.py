"""Schemas and templates in PostgreSQL.

Every function takes a connection from credbatch.tenancy.tenant_transaction: row-level
security scopes it to the caller's tenant, so another tenant's rows are simply absent
(NOT_FOUND), never visible. Creates honour AIP-155 request ids: the first result is returned
for a retried request, and concurrent duplicates wait on the key's row and then read it.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from credbatch.catalog.defaults import (
    DEFAULT_EMAIL_HTML,
    DEFAULT_EMAIL_SUBJECT,
    DEFAULT_EMAIL_TEXT,
    DEFAULT_SMS_BODY,
    DEFAULT_TEMPLATE_NAME,
    SYSTEM_USER,
)
from credbatch.catalog.model import (
    CertificateTemplate,
    EmailTemplate,
    Page,
    SchemaDraft,
    SmsTemplate,
    StoredSchema,
)
from credbatch.catalog.paging import decode_token, encode_token, page_size
from credbatch.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from credbatch.schema.model import Attribute, AttributeType, SchemaVersion
from credbatch.templating.certificate import CertificateLayout

_DEFAULT_LAYOUT = CertificateLayout()

_SCHEMA_KIND = "credential_schema"
_EMAIL_KIND = "email_template"
_SMS_KIND = "sms_template"
_CERTIFICATE_KIND = "certificate_template"


# --- idempotency -------------------------------------------------------------------------


async def _claim_request(
    conn: asyncpg.Connection, kind: str, request_id: str, resource_id: uuid.UUID
) -> uuid.UUID | None:
    """Record request_id -> resource_id; the earlier resource id if the request was seen.

    A concurrent transaction holding the same key makes this wait for its outcome.
    """
    if not request_id:
        return None
    if len(request_id) > 200:
        raise InvalidArgument(
            "request_id is too long",
            violations=[FieldViolation("request_id", "at most 200 characters", "TOO_LONG")],
        )
    inserted = await conn.fetchval(
        """
        INSERT INTO idempotency_keys (tenant_id, kind, request_id, resource_id)
        VALUES (app_tenant(), $1, $2, $3)
        ON CONFLICT DO NOTHING
        RETURNING resource_id
        """,
        kind,
        request_id,
        resource_id,
    )
    if inserted is not None:
        return None
    earlier: uuid.UUID = await conn.fetchval(
        "SELECT resource_id FROM idempotency_keys WHERE kind = $1 AND request_id = $2",
        kind,
        request_id,
    )
    return earlier


# --- schemas -----------------------------------------------------------------------------

_SCHEMA_COLUMNS = """
    s.id, s.display_name, s.latest_version, v.version, v.attributes, v.requires_certificate,
    v.validity_seconds, v.description, v.created_at
"""


def _attributes_json(attributes: Sequence[Attribute]) -> list[dict[str, Any]]:
    return [
        {
            "name": a.name,
            "type": a.type.value,
            "required": a.required,
            "description": a.description,
            "enum_values": list(a.enum_values),
        }
        for a in attributes
    ]


def _schema(row: asyncpg.Record) -> StoredSchema:
    attributes = tuple(
        Attribute(
            name=item["name"],
            type=AttributeType(item["type"]),
            required=bool(item.get("required", False)),
            description=item.get("description", ""),
            enum_values=tuple(item.get("enum_values", ())),
        )
        for item in row["attributes"]
    )
    return StoredSchema(
        schema=SchemaVersion(
            schema_id=row["id"],
            version=row["version"],
            display_name=row["display_name"],
            attributes=attributes,
            requires_certificate=row["requires_certificate"],
            validity_seconds=row["validity_seconds"],
            description=row["description"],
        ),
        latest_version=row["latest_version"],
        create_time=row["created_at"],
    )


def _name_taken(display_name: str) -> AlreadyExists:
    return AlreadyExists(
        "a schema with this display_name already exists",
        reason="SCHEMA_NAME_TAKEN",
        violations=[
            FieldViolation(
                "schema.display_name",
                f"the tenant already has a schema named `{display_name}` (names are unique "
                "ignoring case); publish a new version of it instead",
                "ALREADY_EXISTS",
            )
        ],
    )


async def create_schema(
    conn: asyncpg.Connection, draft: SchemaDraft, created_by: str, request_id: str = ""
) -> StoredSchema:
    """Create a schema at version 1 (the draft is assumed checked by schema.rules)."""
    schema_id = uuid.uuid4()
    earlier = await _claim_request(conn, _SCHEMA_KIND, request_id, schema_id)
    if earlier is not None:
        return await get_schema(conn, earlier, 1)
    inserted = await conn.fetchval(
        """
        INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)
        VALUES (app_tenant(), $1, $2, $3)
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        schema_id,
        draft.display_name,
        created_by,
    )
    if inserted is None:
        raise _name_taken(draft.display_name)
    await _insert_version(conn, schema_id, 1, draft, created_by, None)
    return await get_schema(conn, schema_id, 1)


async def _insert_version(
    conn: asyncpg.Connection,
    schema_id: uuid.UUID,
    version: int,
    draft: SchemaDraft,
    created_by: str,
    request_id: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO credential_schema_versions
          (tenant_id, schema_id, version, attributes, requires_certificate, validity_seconds,
           description, created_by, request_id)
        VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8)
        """,
        schema_id,
        version,
        _attributes_json(draft.attributes),
        draft.requires_certificate,
        draft.validity_seconds,
        draft.description,
        created_by,
        request_id,
    )


async def create_schema_version(
    conn: asyncpg.Connection,
    schema_id: uuid.UUID,
    draft: SchemaDraft,
    created_by: str,
    request_id: str = "",
) -> StoredSchema:
    """Publish the draft as the schema's next version; earlier versions never change.

    The draft's display_name must be the schema's own (or empty, meaning the same).
    """
    row = await conn.fetchrow(
        "SELECT display_name, latest_version FROM credential_schemas WHERE id = $1 FOR UPDATE",
        schema_id,
    )
    if row is None:
        raise schema_not_found()
    if request_id:
        earlier = await conn.fetchval(
            """
            SELECT version FROM credential_schema_versions
            WHERE schema_id = $1 AND request_id = $2
            """,
            schema_id,
            request_id,
        )
        if earlier is not None:
            return await get_schema(conn, schema_id, earlier)
    if draft.display_name and draft.display_name.lower() != row["display_name"].lower():
        raise InvalidArgument(
            "a new version keeps the schema's display_name",
            violations=[
                FieldViolation(
                    "schema.display_name",
                    f"must stay `{row['display_name']}` (or be empty); create a new schema "
                    "for a new name",
                    "DISPLAY_NAME_CHANGED",
                )
            ],
        )
    version = row["latest_version"] + 1
    await _insert_version(conn, schema_id, version, draft, created_by, request_id or None)
    await conn.execute(
        "UPDATE credential_schemas SET latest_version = $2 WHERE id = $1", schema_id, version
    )
    return await get_schema(conn, schema_id, version)


def schema_not_found() -> NotFound:
    return NotFound("schema not found", reason="SCHEMA_NOT_FOUND")


async def get_schema(
    conn: asyncpg.Connection, schema_id: uuid.UUID, version: int | None = None
) -> StoredSchema:
    """A version of a schema (the latest when version is None); NOT_FOUND otherwise."""
    row = await conn.fetchrow(
        f"""
        SELECT {_SCHEMA_COLUMNS}
        FROM credential_schemas s
        JOIN credential_schema_versions v
          ON v.tenant_id = s.tenant_id AND v.schema_id = s.id
         AND v.version = coalesce($2, s.latest_version)
        WHERE s.id = $1
        """,
        schema_id,
        version,
    )
    if row is None:
        raise schema_not_found()
    return _schema(row)


async def list_schemas(conn: asyncpg.Connection, size: int, token: str) -> Page[StoredSchema]:
    """The latest version of each schema, newest schema first."""
    limit = page_size(size)
    after = decode_token(_SCHEMA_KIND, token)
    rows = await conn.fetch(
        f"""
        SELECT {_SCHEMA_COLUMNS}, s.created_at AS schema_created_at
        FROM credential_schemas s
        JOIN credential_schema_versions v
          ON v.tenant_id = s.tenant_id AND v.schema_id = s.id AND v.version = s.latest_version
        WHERE $1::timestamptz IS NULL OR (s.created_at, s.id) < ($1, $2)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT $3
        """,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )
    return _page(rows, limit, _SCHEMA_KIND, _schema, "schema_created_at")


def _page(
    rows: Sequence[asyncpg.Record],
    limit: int,
    kind: str,
    build: Any,
    created_column: str = "created_at",
) -> Page[Any]:
    items = [build(row) for row in rows[:limit]]
    token = ""
    if len(rows) > limit:
        last = rows[limit - 1]
        token = encode_token(kind, last[created_column], last["id"])
    return Page(items, token)


# --- email templates ---------------------------------------------------------------------

_EMAIL_COLUMNS = "id, display_name, subject, html_body, text_body, is_default, created_at"


def _email(row: asyncpg.Record) -> EmailTemplate:
    return EmailTemplate(
        id=row["id"],
        display_name=row["display_name"],
        subject=row["subject"],
        html_body=row["html_body"],
        text_body=row["text_body"],
        is_default=row["is_default"],
        create_time=row["created_at"],
    )


def template_not_found(kind: str) -> NotFound:
    return NotFound(f"{kind} template not found", reason="TEMPLATE_NOT_FOUND")


async def create_email_template(
    conn: asyncpg.Connection, template: EmailTemplate, created_by: str, request_id: str = ""
) -> EmailTemplate:
    """Store a checked email template (its id is assigned here)."""
    template_id = uuid.uuid4()
    earlier = await _claim_request(conn, _EMAIL_KIND, request_id, template_id)
    if earlier is not None:
        return await get_email_template(conn, earlier)
    await conn.execute(
        """
        INSERT INTO email_templates
          (tenant_id, id, display_name, subject, html_body, text_body, created_by)
        VALUES (app_tenant(), $1, $2, $3, $4, $5, $6)
        """,
        template_id,
        template.display_name,
        template.subject,
        template.html_body,
        template.text_body,
        created_by,
    )
    return await get_email_template(conn, template_id)


async def get_email_template(conn: asyncpg.Connection, template_id: uuid.UUID) -> EmailTemplate:
    row = await conn.fetchrow(
        f"SELECT {_EMAIL_COLUMNS} FROM email_templates WHERE id = $1", template_id
    )
    if row is None:
        raise template_not_found("email")
    return _email(row)


async def get_default_email_template(conn: asyncpg.Connection) -> EmailTemplate:
    """The tenant's built-in default email template, created on first use."""
    row = await conn.fetchrow(f"SELECT {_EMAIL_COLUMNS} FROM email_templates WHERE is_default")
    if row is None:
        await conn.execute(
            """
            INSERT INTO email_templates (tenant_id, id, display_name, subject, html_body,
                                         text_body, is_default, created_by)
            VALUES (app_tenant(), $1, $2, $3, $4, $5, true, $6)
            ON CONFLICT (tenant_id) WHERE is_default DO NOTHING
            """,
            uuid.uuid4(),
            DEFAULT_TEMPLATE_NAME,
            DEFAULT_EMAIL_SUBJECT,
            DEFAULT_EMAIL_HTML,
            DEFAULT_EMAIL_TEXT,
            SYSTEM_USER,
        )
        row = await conn.fetchrow(f"SELECT {_EMAIL_COLUMNS} FROM email_templates WHERE is_default")
    return _email(row)


async def list_email_templates(
    conn: asyncpg.Connection, size: int, token: str
) -> Page[EmailTemplate]:
    """Email templates newest first, the built-in default included."""
    await get_default_email_template(conn)
    limit = page_size(size)
    after = decode_token(_EMAIL_KIND, token)
    rows = await conn.fetch(
        f"""
        SELECT {_EMAIL_COLUMNS} FROM email_templates
        WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2)
        ORDER BY created_at DESC, id DESC
        LIMIT $3
        """,
        *_after(after),
        limit + 1,
    )
    return _page(rows, limit, _EMAIL_KIND, _email)


def _after(
    after: tuple[datetime.datetime, uuid.UUID] | None,
) -> tuple[datetime.datetime | None, uuid.UUID | None]:
    return (after[0], after[1]) if after else (None, None)


# --- SMS templates -----------------------------------------------------------------------

_SMS_COLUMNS = "id, display_name, body, is_default, created_at"


def _sms(row: asyncpg.Record) -> SmsTemplate:
    return SmsTemplate(
        id=row["id"],
        display_name=row["display_name"],
        body=row["body"],
        is_default=row["is_default"],
        create_time=row["created_at"],
    )


async def create_sms_template(
    conn: asyncpg.Connection, template: SmsTemplate, created_by: str, request_id: str = ""
) -> SmsTemplate:
    """Store a checked SMS template (its id is assigned here)."""
    template_id = uuid.uuid4()
    earlier = await _claim_request(conn, _SMS_KIND, request_id, template_id)
    if earlier is not None:
        return await get_sms_template(conn, earlier)
    await conn.execute(
        """
        INSERT INTO sms_templates (tenant_id, id, display_name, body, created_by)
        VALUES (app_tenant(), $1, $2, $3, $4)
        """,
        template_id,
        template.display_name,
        template.body,
        created_by,
    )
    return await get_sms_template(conn, template_id)


async def get_sms_template(conn: asyncpg.Connection, template_id: uuid.UUID) -> SmsTemplate:
    row = await conn.fetchrow(
        f"SELECT {_SMS_COLUMNS} FROM sms_templates WHERE id = $1", template_id
    )
    if row is None:
        raise template_not_found("SMS")
    return _sms(row)


async def get_default_sms_template(conn: asyncpg.Connection) -> SmsTemplate:
    """The tenant's built-in default SMS template, created on first use."""
    row = await conn.fetchrow(f"SELECT {_SMS_COLUMNS} FROM sms_templates WHERE is_default")
    if row is None:
        await conn.execute(
            """
            INSERT INTO sms_templates (tenant_id, id, display_name, body, is_default, created_by)
            VALUES (app_tenant(), $1, $2, $3, true, $4)
            ON CONFLICT (tenant_id) WHERE is_default DO NOTHING
            """,
            uuid.uuid4(),
            DEFAULT_TEMPLATE_NAME,
            DEFAULT_SMS_BODY,
            SYSTEM_USER,
        )
        row = await conn.fetchrow(f"SELECT {_SMS_COLUMNS} FROM sms_templates WHERE is_default")
    return _sms(row)


async def list_sms_templates(conn: asyncpg.Connection, size: int, token: str) -> Page[SmsTemplate]:
    """SMS templates newest first, the built-in default included."""
    await get_default_sms_template(conn)
    limit = page_size(size)
    after = decode_token(_SMS_KIND, token)
    rows = await conn.fetch(
        f"""
        SELECT {_SMS_COLUMNS} FROM sms_templates
        WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2)
        ORDER BY created_at DESC, id DESC
        LIMIT $3
        """,
        *_after(after),
        limit + 1,
    )
    return _page(rows, limit, _SMS_KIND, _sms)


# --- certificate templates ---------------------------------------------------------------

_CERTIFICATE_COLUMNS = "id, display_name, title, body, layout, logo, logo_mime_type, created_at"


def _certificate(row: asyncpg.Record) -> CertificateTemplate:
    layout = dict(row["layout"])
    return CertificateTemplate(
        id=row["id"],
        display_name=row["display_name"],
        title=row["title"],
        body=row["body"],
        layout=CertificateLayout(
            page_size=layout.get("page_size", "A4"),
            orientation=layout.get("orientation", "LANDSCAPE"),
            primary_color=layout.get("primary_color", _DEFAULT_LAYOUT.primary_color),
            text_color=layout.get("text_color", _DEFAULT_LAYOUT.text_color),
            background_color=layout.get("background_color", _DEFAULT_LAYOUT.background_color),
            logo=row["logo"],
            logo_mime_type=row["logo_mime_type"],
        ),
        create_time=row["created_at"],
    )


async def create_certificate_template(
    conn: asyncpg.Connection, template: CertificateTemplate, created_by: str, request_id: str = ""
) -> CertificateTemplate:
    """Store a checked certificate template (its id is assigned here)."""
    template_id = uuid.uuid4()
    earlier = await _claim_request(conn, _CERTIFICATE_KIND, request_id, template_id)
    if earlier is not None:
        return await get_certificate_template(conn, earlier)
    layout = template.layout
    await conn.execute(
        """
        INSERT INTO certificate_templates
          (tenant_id, id, display_name, title, body, layout, logo, logo_mime_type, created_by)
        VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8)
        """,
        template_id,
        template.display_name,
        template.title,
        template.body,
        {
            "page_size": layout.page_size,
            "orientation": layout.orientation,
            "primary_color": layout.primary_color,
            "text_color": layout.text_color,
            "background_color": layout.background_color,
        },
        layout.logo,
        layout.logo_mime_type if layout.logo is not None else None,
        created_by,
    )
    return await get_certificate_template(conn, template_id)


async def get_certificate_template(
    conn: asyncpg.Connection, template_id: uuid.UUID
) -> CertificateTemplate:
    row = await conn.fetchrow(
        f"SELECT {_CERTIFICATE_COLUMNS} FROM certificate_templates WHERE id = $1", template_id
    )
    if row is None:
        raise template_not_found("certificate")
    return _certificate(row)


async def list_certificate_templates(
    conn: asyncpg.Connection, size: int, token: str
) -> Page[CertificateTemplate]:
    """Certificate templates newest first."""
    limit = page_size(size)
    after = decode_token(_CERTIFICATE_KIND, token)
    rows = await conn.fetch(
        f"""
        SELECT {_CERTIFICATE_COLUMNS} FROM certificate_templates
        WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2)
        ORDER BY created_at DESC, id DESC
        LIMIT $3
        """,
        *_after(after),
        limit + 1,
    )
    return _page(rows, limit, _CERTIFICATE_KIND, _certificate)
