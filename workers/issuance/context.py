"""What every record of a batch shares, loaded and compiled once per batch per process.

Schema attributes, validity, mediums, the compiled email / SMS / certificate templates, the
tenant's profile and the credential's iss, vct and vct#integrity: compiling templates per row
would cost more than signing. Loading the first batch of a schema version stores the
version's type metadata (``credbatch.tenants.type_metadata_store``), with the profile of
that moment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import asyncpg

from credbatch.batches.claim_mode import ClaimMode
from credbatch.catalog import repository as catalog
from credbatch.catalog.checks import SMS_LIMITS
from credbatch.errors import CredbatchError
from credbatch.schema.model import Medium, SchemaVersion
from credbatch.templating.certificate import CompiledCertificate
from credbatch.templating.sandbox import CompiledTemplate, TemplateProblem
from credbatch.tenancy import service_scope, tenant_transaction
from credbatch.tenants import profile as profiles
from credbatch.tenants import type_metadata, type_metadata_store
from credbatch.tenants.display import IssuerDisplay, display_of
from credbatch.tenants.profile import TenantProfile
from workers.issuance.certificates import compile_certificate
from workers.issuance.outcomes import TEMPLATE_ERROR
from workers.issuance.rendering import EmailTemplate

S = TypeVar("S")
C = TypeVar("C")

_BATCH = """
SELECT b.schema_id, b.schema_version, b.mediums, b.email_template_id, b.sms_template_id,
       b.certificate_template_id, b.credential_validity_seconds, b.claim_mode, b.created_at
FROM batches b
WHERE b.tenant_id = $1 AND b.id = $2
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
    schema: SchemaVersion
    mediums: frozenset[Medium]
    validity_seconds: int | None
    issuer: str
    vct: str
    email: EmailTemplate | None
    sms: CompiledTemplate | None
    certificate: CompiledCertificate | None
    claim_mode: ClaimMode = ClaimMode.OID4VCI
    uploaded_at: datetime | None = None  # the batch's creation, by its upload
    profile: TenantProfile = field(default_factory=TenantProfile)
    display: IssuerDisplay = field(default_factory=IssuerDisplay)
    # SRI digest of the schema version's stored type metadata (the credential's vct#integrity).
    vct_integrity: str = ""

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.schema.attributes)


async def load_context(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID, public_url: str
) -> BatchContext | None:
    """The batch's context, or None when the tenant has no such batch.

    Raises:
        BatchContextError: a template or the schema is missing or does not compile.
    """
    row = await conn.fetchrow(_BATCH, tenant_id, batch_id)
    if row is None:
        return None
    mediums = frozenset(Medium(m) for m in row["mediums"])
    profile = await profiles.load(conn)
    try:
        schema = (await catalog.get_schema(conn, row["schema_id"], row["schema_version"])).schema
        email = sms = certificate = None
        if Medium.EMAIL in mediums:
            stored = (
                await catalog.get_email_template(conn, row["email_template_id"])
                if row["email_template_id"] is not None
                else await catalog.get_default_email_template(conn)
            )
            email = await _compiled(EmailTemplate.compile, stored)
        if Medium.SMS in mediums:
            stored_sms = (
                await catalog.get_sms_template(conn, row["sms_template_id"])
                if row["sms_template_id"] is not None
                else await catalog.get_default_sms_template(conn)
            )
            sms = await _compiled(lambda s: CompiledTemplate(s.body, limits=SMS_LIMITS), stored_sms)
        if schema.requires_certificate:
            if row["certificate_template_id"] is None:
                raise BatchContextError(
                    "CERTIFICATE_TEMPLATE_MISSING", "the schema requires a certificate template"
                )
            stored_certificate = await catalog.get_certificate_template(
                conn, row["certificate_template_id"]
            )
            certificate = await _compiled(
                lambda t: compile_certificate(t, profile.logo), stored_certificate
            )
    except TemplateProblem as problem:
        raise BatchContextError(TEMPLATE_ERROR, f"{problem.code}: {problem}") from None
    except CredbatchError as error:
        raise BatchContextError("BATCH_TEMPLATE_MISSING", str(error)) from None
    issuer = f"{public_url}/tenants/{tenant_id}"
    vct = f"{issuer}/schemas/{row['schema_id']}/v{row['schema_version']}"
    display = display_of(profile, public_url, tenant_id)
    vct_integrity = await type_metadata_store.stored_integrity(
        conn, row["schema_id"], row["schema_version"]
    ) or await type_metadata_store.freeze(
        conn,
        row["schema_id"],
        row["schema_version"],
        type_metadata.build(vct, schema, display),
    )
    validity = row["credential_validity_seconds"] or schema.validity_seconds
    return BatchContext(
        tenant_id=tenant_id,
        batch_id=batch_id,
        schema=schema,
        mediums=mediums,
        validity_seconds=int(validity) if validity is not None else None,
        issuer=issuer,
        vct=vct,
        email=email,
        sms=sms,
        certificate=certificate,
        claim_mode=ClaimMode(row["claim_mode"]),
        uploaded_at=row["created_at"],
        profile=profile,
        display=display,
        vct_integrity=vct_integrity,
    )


async def _compiled(compile_template: Callable[[S], C], stored: S) -> C:
    # In a thread: compiling is linear in the source, up to a second or two of CPU for the
    # largest template (and a large logo is decoded and flattened), and the event loop keeps
    # serving the other groups meanwhile.
    return await asyncio.to_thread(compile_template, stored)


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
                # Not read-only: a tenant's default template is created on first use.
                async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
                    context = await load_context(conn, tenant_id, batch_id, self._public_url)
                if context is None:
                    self._locks.pop(key, None)
                    return None  # not cached: an absent batch may be a forged job
                self._items[key] = context
                while len(self._items) > self._capacity:
                    old, _ = self._items.popitem(last=False)
                    self._locks.pop(old, None)
            return self._items[key]
