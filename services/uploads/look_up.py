"""An upload's header read in one statement: its request id, its schema, its templates.

Before the file is read, an upload needs to know whether its request id was used already
(a retry), the schema version it names and the email/SMS template each medium uses (the
named one, else the tenant's default). Each was a statement of its own, a round trip each;
here they are one ``SELECT`` whose parts are independent lateral reads, each scoped by
row-level security as its own statement would be. What the statement cannot settle is left
to ``request_rules.resolve``'s usual reads: a template not found (an unknown name, or a
default not stored yet, which ``templates.use`` stores first) and the rarer parts of a header
(reminder and certificate templates).

The statement's text depends on the header's shape only (request id or not, which mediums,
named templates or defaults), so each shape is one prepared statement of the connection.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from credbatch.catalog.model import EmailTemplate, SmsTemplate, StoredSchema
from credbatch.catalog.schemas import schema_from_row, schema_select
from credbatch.catalog.template_kinds import EMAIL, SMS
from credbatch.catalog.templates import Listed, TemplateKind
from credbatch.schema.model import Medium
from services.uploads.model import CheckedRequest
from services.uploads.repository import IDEMPOTENCY_KIND

R = TypeVar("R", bound=Listed)


@dataclass(frozen=True)
class HeaderRows:
    """What the statement found.

    Attributes:
        earlier: the batch an earlier upload with the request id created (None: none, or
            no request id).
        schema: the schema version; None when the tenant has no such version.
        email, sms: the template the medium uses; None when the medium is not asked for or
            the template was not found (``resolve`` then reads it the usual way).
    """

    earlier: uuid.UUID | None
    schema: StoredSchema | None
    email: EmailTemplate | None
    sms: SmsTemplate | None


@dataclass(frozen=True)
class _Part(Generic[R]):
    """A template's lateral read, its columns prefixed with ``alias`` and ``_``."""

    kind: TemplateKind[R]
    alias: str

    @property
    def columns(self) -> tuple[str, ...]:
        return ("id", *self.kind.columns, "is_default", "created_at")

    def join(self, named: str | None) -> str:
        """The template by the id in parameter ``named``, else the tenant's default."""
        columns = ", ".join(f"{column} AS {self.alias}_{column}" for column in self.columns)
        where = f"id = {named}" if named else "is_default"
        return (
            f"LEFT JOIN LATERAL (SELECT {columns} FROM {self.kind.table} WHERE {where}) "
            f"{self.alias} ON true"
        )

    def record(self, row: Mapping[str, Any]) -> R | None:
        """The template the row holds; None when it found none."""
        if row[f"{self.alias}_id"] is None:
            return None
        return self.kind.from_row({c: row[f"{self.alias}_{c}"] for c in self.columns})


_EMAIL = _Part(EMAIL, "email")
_SMS = _Part(SMS, "sms")


@functools.cache
def statement(has_request_id: bool, email: bool | None, sms: bool | None) -> str:
    """The statement for a header's shape: ``email``/``sms`` None when the medium is not
    asked for, else whether a template is named. Parameters, numbered in this order and
    only those the shape uses: the schema id, its version (NULL: the latest), the request
    id, the email template's id, the SMS template's id."""
    numbers = iter(range(3, 6))
    earlier = "NULL::uuid"
    if has_request_id:
        earlier = (
            "(SELECT resource_id FROM idempotency_keys "
            f"WHERE kind = '{IDEMPOTENCY_KIND}' AND request_id = ${next(numbers)}::text)"
        )
    columns = [f"{earlier} AS earlier", "sv.*"]
    joins = [f"LEFT JOIN LATERAL ({schema_select('$1', '$2')}) sv ON true"]
    for part, named in ((_EMAIL, email), (_SMS, sms)):
        if named is not None:
            columns.append(f"{part.alias}.*")
            joins.append(part.join(f"${next(numbers)}::uuid" if named else None))
    return f"SELECT {', '.join(columns)}\nFROM (SELECT) one\n" + "\n".join(joins)


async def read_header(conn: asyncpg.Connection, checked: CheckedRequest) -> HeaderRows:
    """The header's request id, schema and templates, in one statement (a round trip)."""
    args: list[object] = [checked.schema_id, checked.schema_version]
    if checked.request_id is not None:
        args.append(checked.request_id)
    email = sms = None
    if Medium.EMAIL in checked.mediums:
        email = checked.email_template_id is not None
        if email:
            args.append(checked.email_template_id)
    if Medium.SMS in checked.mediums:
        sms = checked.sms_template_id is not None
        if sms:
            args.append(checked.sms_template_id)
    row = await conn.fetchrow(statement(checked.request_id is not None, email, sms), *args)
    assert row is not None  # FROM (SELECT) gives one row, whatever the joins find
    return HeaderRows(
        earlier=row["earlier"],
        schema=schema_from_row(row) if row["id"] is not None else None,
        email=_EMAIL.record(row) if email is not None else None,
        sms=_SMS.record(row) if sms is not None else None,
    )
