"""What every record of a batch shares, loaded and compiled once per batch per process.

Schema attributes, validity, mediums, the compiled email / SMS / certificate templates and
the credential's iss and vct: compiling templates per row would cost more than signing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]

from credbatch.tenancy import service_scope, tenant_transaction
from workers.issuance.certificates import CertificateTemplate
from workers.issuance.rendering import BUILTIN_EMAIL, BUILTIN_SMS, EmailTemplate, SmsTemplate

_BATCH = """
SELECT b.schema_id, b.schema_version, b.mediums, b.email_template_id, b.sms_template_id,
       b.certificate_template_id, b.credential_validity_seconds,
       v.attributes, v.requires_certificate, v.validity_seconds, s.display_name
FROM batches b
JOIN credential_schema_versions v
  ON v.tenant_id = b.tenant_id AND v.schema_id = b.schema_id AND v.version = b.schema_version
JOIN credential_schemas s ON s.tenant_id = b.tenant_id AND s.id = b.schema_id
WHERE b.tenant_id = $1 AND b.id = $2
"""
_EMAIL = """
SELECT subject, html_body, text_body FROM email_templates
WHERE tenant_id = $1 AND (id = $2::uuid OR ($2::uuid IS NULL AND is_default))
"""
_SMS = """
SELECT body FROM sms_templates
WHERE tenant_id = $1 AND (id = $2::uuid OR ($2::uuid IS NULL AND is_default))
"""
_CERTIFICATE = """
SELECT title, body, layout, logo FROM certificate_templates WHERE tenant_id = $1 AND id = $2
"""


class BatchContextError(Exception):
    """The batch cannot be issued (e.g. it needs a certificate but names no template)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BatchContext:
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    schema_id: uuid.UUID
    schema_version: int
    schema_name: str
    attribute_names: tuple[str, ...]
    mediums: frozenset[str]
    validity_seconds: int | None
    issuer: str
    vct: str
    email: EmailTemplate | None
    sms: SmsTemplate | None
    certificate: CertificateTemplate | None


async def load_context(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID, public_url: str
) -> BatchContext | None:
    row = await conn.fetchrow(_BATCH, tenant_id, batch_id)
    if row is None:
        return None
    mediums = frozenset(row["mediums"])
    email = sms = certificate = None
    if "EMAIL" in mediums:
        found = await conn.fetchrow(_EMAIL, tenant_id, row["email_template_id"])
        source = (
            (found["subject"], found["html_body"], found["text_body"]) if found else BUILTIN_EMAIL
        )
        email = EmailTemplate.compile(*source)
    if "SMS" in mediums:
        body = await conn.fetchval(_SMS, tenant_id, row["sms_template_id"])
        sms = SmsTemplate.compile(body if body is not None else BUILTIN_SMS)
    if row["requires_certificate"]:
        template = None
        if row["certificate_template_id"] is not None:
            template = await conn.fetchrow(_CERTIFICATE, tenant_id, row["certificate_template_id"])
        if template is None:
            raise BatchContextError(
                "CERTIFICATE_TEMPLATE_MISSING", "the schema requires a certificate template"
            )
        logo = bytes(template["logo"]) if template["logo"] is not None else None
        certificate = CertificateTemplate.compile(
            template["title"], template["body"], dict(template["layout"]), logo
        )
    issuer = f"{public_url}/tenants/{tenant_id}"
    validity = row["credential_validity_seconds"] or row["validity_seconds"]
    return BatchContext(
        tenant_id=tenant_id,
        batch_id=batch_id,
        schema_id=row["schema_id"],
        schema_version=row["schema_version"],
        schema_name=row["display_name"],
        attribute_names=tuple(a["name"] for a in row["attributes"]),
        mediums=mediums,
        validity_seconds=int(validity) if validity is not None else None,
        issuer=issuer,
        vct=f"{issuer}/schemas/{row['schema_id']}/v{row['schema_version']}",
        email=email,
        sms=sms,
        certificate=certificate,
    )


class ContextCache:
    """A small LRU of batch contexts; one load per batch however many jobs ask at once."""

    def __init__(self, pool: asyncpg.Pool, public_url: str, capacity: int = 64) -> None:
        self._pool = pool
        self._public_url = public_url
        self._capacity = capacity
        self._items: OrderedDict[tuple[uuid.UUID, uuid.UUID], BatchContext | None] = OrderedDict()
        self._locks: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Lock] = {}

    async def get(self, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> BatchContext | None:
        key = (tenant_id, batch_id)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._items:
                async with tenant_transaction(
                    self._pool, service_scope(tenant_id), readonly=True
                ) as conn:
                    context = await load_context(conn, tenant_id, batch_id, self._public_url)
                if context is None:
                    self._locks.pop(key, None)
                    return None  # not cached: an absent batch may be a forged job
                self._items[key] = context
                while len(self._items) > self._capacity:
                    old, _ = self._items.popitem(last=False)
                    self._locks.pop(old, None)
            return self._items[key]
