"""The catalog's persistence as its callers use it: schemas, and templates by kind.

Schemas live in credbatch.catalog.schemas; the three kinds of template share one
implementation, credbatch.catalog.templates, driven by the descriptors of
credbatch.catalog.template_kinds. Every function takes a connection from
credbatch.tenancy.tenant_transaction.
"""

from __future__ import annotations

import uuid

import asyncpg

from credbatch.catalog import templates
from credbatch.catalog.model import CertificateTemplate, EmailTemplate, Page, SmsTemplate
from credbatch.catalog.schemas import (
    create_schema,
    create_schema_version,
    get_schema,
    list_schemas,
    schema_not_found,
)
from credbatch.catalog.template_kinds import CERTIFICATE, EMAIL, SMS

__all__ = [
    "create_certificate_template",
    "create_email_template",
    "create_schema",
    "create_schema_version",
    "create_sms_template",
    "get_certificate_template",
    "get_default_email_template",
    "get_default_sms_template",
    "get_email_template",
    "get_schema",
    "get_sms_template",
    "list_certificate_templates",
    "list_email_templates",
    "list_schemas",
    "list_sms_templates",
    "schema_not_found",
    "use_email_template",
    "use_sms_template",
]


async def create_email_template(
    conn: asyncpg.Connection, template: EmailTemplate, created_by: str, request_id: str = ""
) -> EmailTemplate:
    return await templates.create(conn, EMAIL, template, created_by, request_id)


async def create_sms_template(
    conn: asyncpg.Connection, template: SmsTemplate, created_by: str, request_id: str = ""
) -> SmsTemplate:
    return await templates.create(conn, SMS, template, created_by, request_id)


async def create_certificate_template(
    conn: asyncpg.Connection, template: CertificateTemplate, created_by: str, request_id: str = ""
) -> CertificateTemplate:
    return await templates.create(conn, CERTIFICATE, template, created_by, request_id)


async def get_email_template(conn: asyncpg.Connection, template_id: uuid.UUID) -> EmailTemplate:
    return await templates.get(conn, EMAIL, template_id)


async def get_sms_template(conn: asyncpg.Connection, template_id: uuid.UUID) -> SmsTemplate:
    return await templates.get(conn, SMS, template_id)


async def get_certificate_template(
    conn: asyncpg.Connection, template_id: uuid.UUID
) -> CertificateTemplate:
    return await templates.get(conn, CERTIFICATE, template_id)


async def get_default_email_template(conn: asyncpg.Connection) -> EmailTemplate:
    """The tenant's default email template, stored on first use."""
    return await templates.get_default(conn, EMAIL)


async def get_default_sms_template(conn: asyncpg.Connection) -> SmsTemplate:
    """The tenant's default SMS template, stored on first use."""
    return await templates.get_default(conn, SMS)


async def use_email_template(
    conn: asyncpg.Connection, template_id: uuid.UUID | None
) -> EmailTemplate:
    """The email template a new batch refers to (the default when None), stored."""
    return await templates.use(conn, EMAIL, template_id)


async def use_sms_template(conn: asyncpg.Connection, template_id: uuid.UUID | None) -> SmsTemplate:
    """The SMS template a new batch refers to (the default when None), stored."""
    return await templates.use(conn, SMS, template_id)


async def list_email_templates(
    conn: asyncpg.Connection, size: int, token: str
) -> Page[EmailTemplate]:
    return await templates.list_page(conn, EMAIL, size, token)


async def list_sms_templates(conn: asyncpg.Connection, size: int, token: str) -> Page[SmsTemplate]:
    return await templates.list_page(conn, SMS, size, token)


async def list_certificate_templates(
    conn: asyncpg.Connection, size: int, token: str
) -> Page[CertificateTemplate]:
    return await templates.list_page(conn, CERTIFICATE, size, token)
