"""What the TemplateService does, in domain terms: checks, then the catalog repository.

Every method runs in one tenant transaction for the caller's scope, so row-level security
decides what exists; role checks happen at the edge (credbatch.auth.rules). Every create is
audited in its transaction (the new resource's name, no display name or content: those are
the tenant's free text), and a refused one after its rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from credbatch import audit, names
from credbatch.audit import Action
from credbatch.catalog import repository, templates
from credbatch.catalog.checks import check_against_schema
from credbatch.catalog.model import Page, SchemaDraft, StoredSchema
from credbatch.catalog.templates import Listed
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.schema.model import Medium, SchemaVersion
from credbatch.schema.rules import check_schema_definition
from credbatch.templating.runner import Renderer
from credbatch.tenancy import TenantScope, tenant_transaction
from services.templates import previews
from services.templates.kinds import Fields, TemplateRules
from services.templates.sample_csv import SampleCsv, sample_csv

SchemaRef = tuple[uuid.UUID, int | None]
R = TypeVar("R", bound=Listed)


def _refuse_schema(violations: Sequence[FieldViolation]) -> InvalidArgument:
    return InvalidArgument(
        "the schema definition is not valid", reason="INVALID_SCHEMA", violations=violations
    )


class TemplateCatalog:
    """Schemas, templates, previews and sample CSVs of the caller's tenant."""

    def __init__(self, pool: asyncpg.Pool, renderer: Renderer) -> None:
        self._pool = pool
        self._renderer = renderer

    # --- schemas ---------------------------------------------------------------------

    async def create_schema(
        self,
        scope: TenantScope,
        draft: SchemaDraft,
        mapping_violations: Sequence[FieldViolation],
        request_id: str,
    ) -> StoredSchema:
        async with audit.failures_recorded(
            self._pool, scope, Action.SCHEMA_CREATE, names.SCHEMAS, request_id=request_id
        ):
            violations = [*mapping_violations, *self._check_draft(draft)]
            if violations:
                raise _refuse_schema(violations)
            async with tenant_transaction(self._pool, scope) as conn:
                stored = await repository.create_schema(conn, draft, scope.user_id, request_id)
                await _record_schema(conn, scope, Action.SCHEMA_CREATE, stored, request_id)
                return stored

    async def create_schema_version(
        self,
        scope: TenantScope,
        schema_id: uuid.UUID,
        draft: SchemaDraft,
        mapping_violations: Sequence[FieldViolation],
        request_id: str,
    ) -> StoredSchema:
        async with audit.failures_recorded(
            self._pool,
            scope,
            Action.SCHEMA_VERSION_CREATE,
            names.schema_name(schema_id),
            request_id=request_id,
        ):
            # An empty display_name means "the same"; the repository checks it against the row.
            checked = draft if draft.display_name else _with_name(draft, "unchanged")
            violations = [*mapping_violations, *self._check_draft(checked)]
            if violations:
                raise _refuse_schema(violations)
            async with tenant_transaction(self._pool, scope) as conn:
                stored = await repository.create_schema_version(
                    conn, schema_id, draft, scope.user_id, request_id
                )
                await _record_schema(conn, scope, Action.SCHEMA_VERSION_CREATE, stored, request_id)
                return stored

    @staticmethod
    def _check_draft(draft: SchemaDraft) -> list[FieldViolation]:
        return check_schema_definition(
            draft.display_name,
            draft.attributes,
            description=draft.description,
            validity_seconds=draft.validity_seconds,
        )

    async def get_schema(self, scope: TenantScope, ref: SchemaRef) -> StoredSchema:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            return await repository.get_schema(conn, *ref)

    async def list_schemas(self, scope: TenantScope, size: int, token: str) -> Page[StoredSchema]:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            return await repository.list_schemas(conn, size, token)

    async def _schema_for(
        self, conn: asyncpg.Connection, name: str, field: str
    ) -> SchemaVersion | None:
        if not name:
            return None
        stored = await repository.get_schema(conn, *names.parse_schema_name(name, field))
        return stored.schema

    # --- templates -------------------------------------------------------------------

    async def create_template(
        self,
        scope: TenantScope,
        rules: TemplateRules[R, Any],
        template: R,
        request_id: str,
        schema_name: str,
    ) -> R:
        action = _TEMPLATE_CREATES[rules.kind.collection]
        async with audit.failures_recorded(
            self._pool, scope, action, rules.kind.collection, request_id=request_id
        ):
            fields = await rules.checked_fields(template, self._renderer, str(scope.tenant_id))
            async with tenant_transaction(self._pool, scope) as conn:
                schema = await self._schema_for(conn, schema_name, "validate_against_schema")
                if schema is not None:
                    _check_pairing(fields, schema)
                created = await templates.create(
                    conn, rules.kind, template, scope.user_id, request_id
                )
                await audit.record(
                    conn,
                    scope,
                    action,
                    names.format_name(rules.kind.collection, created.id),
                    request_id=request_id,
                )
                return created

    async def get_template(self, scope: TenantScope, rules: TemplateRules[R, Any], name: str) -> R:
        template_id = names.parse_name(name, rules.kind.collection, "name")
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            return await templates.get(conn, rules.kind, template_id)

    async def list_templates(
        self, scope: TenantScope, rules: TemplateRules[R, Any], size: int, token: str
    ) -> Page[R]:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            return await templates.list_page(conn, rules.kind, size, token)

    # --- previews and sample CSV -------------------------------------------------------

    async def preview(
        self,
        scope: TenantScope,
        template_name: str,
        schema_name: str,
        overrides: Mapping[str, str],
    ) -> previews.Preview:
        collection, template_id = names.parse_template_name(template_name, "template")
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            schema = await self._schema_for(conn, schema_name, "schema")
            if collection == names.EMAIL_TEMPLATES:
                email = await repository.get_email_template(conn, template_id)
            elif collection == names.SMS_TEMPLATES:
                sms = await repository.get_sms_template(conn, template_id)
            else:
                certificate = await repository.get_certificate_template(conn, template_id)
        render = previews.Rendering(self._renderer, str(scope.tenant_id))
        if collection == names.EMAIL_TEMPLATES:
            return await previews.preview_email(email, schema, overrides, render)
        if collection == names.SMS_TEMPLATES:
            return await previews.preview_sms(sms, schema, overrides, render)
        return await previews.preview_certificate(certificate, schema, overrides, render)

    async def sample_csv(
        self, scope: TenantScope, schema_name: str, mediums: Collection[Medium]
    ) -> SampleCsv:
        ref = names.parse_schema_name(schema_name, "schema")
        if not mediums:
            raise InvalidArgument(
                "at least one medium is required",
                violations=[
                    FieldViolation("mediums", "name MEDIUM_EMAIL, MEDIUM_SMS or both", "REQUIRED")
                ],
            )
        stored = await self.get_schema(scope, ref)
        return sample_csv(stored.schema, mediums)


_TEMPLATE_CREATES = {
    names.EMAIL_TEMPLATES: Action.EMAIL_TEMPLATE_CREATE,
    names.SMS_TEMPLATES: Action.SMS_TEMPLATE_CREATE,
    names.CERTIFICATE_TEMPLATES: Action.CERTIFICATE_TEMPLATE_CREATE,
}


async def _record_schema(
    conn: asyncpg.Connection,
    scope: TenantScope,
    action: Action,
    stored: StoredSchema,
    request_id: str,
) -> None:
    await audit.record(
        conn,
        scope,
        action,
        names.schema_name(stored.schema.schema_id, stored.schema.version),
        details={"attributes": len(stored.schema.attributes)},
        request_id=request_id,
    )


def _check_pairing(fields: Fields, schema: SchemaVersion) -> None:
    check_against_schema(
        fields, schema, "the template uses placeholders the schema does not provide"
    )


def _with_name(draft: SchemaDraft, display_name: str) -> SchemaDraft:
    return SchemaDraft(
        display_name,
        draft.attributes,
        draft.requires_certificate,
        draft.validity_seconds,
        draft.description,
    )
