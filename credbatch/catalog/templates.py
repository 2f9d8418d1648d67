"""Email, SMS and certificate templates in PostgreSQL: one implementation, a descriptor per kind.

Every function takes a connection from credbatch.tenancy.tenant_transaction: row-level
security scopes it to the caller's tenant, so another tenant's templates are simply absent
(NOT_FOUND). Creates claim their AIP-155 request id (credbatch.db.idempotency).

Built-in defaults: a kind with ``default`` content (email, SMS) gives every tenant one default
template, used when an upload names none. Reads never write, yet show the default from the
start: its id is derived from the tenant, so it has one name before and after it is stored,
and until then Get and List present it from the built-in content. It is stored on first use
by a batch (``get_default``, ``use``), whose foreign key needs the row. Its create_time is the
tenant's, so storing it does not move it in the newest-first list. A default already stored
under another id stays the tenant's default: the table allows one per tenant.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import asyncpg

from credbatch.catalog.defaults import SYSTEM_USER
from credbatch.catalog.model import Page
from credbatch.db import idempotency
from credbatch.errors import NotFound
from credbatch.paging import PagePosition, decode_token, next_page_token, page_size


class Listed(Protocol):
    """What paging needs of a template record."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def create_time(self) -> datetime.datetime | None: ...


R = TypeVar("R", bound=Listed)

# Derives a tenant's default template ids; changing it would rename every unstored default.
_DEFAULT_NAMESPACE = uuid.UUID("3cff7483-87ad-43e6-b79b-4d30a6f46760")
# A tenant's row is written by its first write transaction; a tenant that has only read has
# no templates either, so any time keeps the (one-item) list in order.
_TENANT_SINCE = "coalesce((SELECT created_at FROM tenants WHERE id = app_tenant()), now())"


@dataclass(frozen=True)
class TemplateKind(Generic[R]):
    """How one kind of template is stored.

    Attributes:
        collection: its resource-name collection (credbatch.names); also names its list.
        table: its table; ``columns`` are the content columns a create fills, in order.
        request_kind: its key kind in ``idempotency_keys``.
        label: how messages call it ("email template not found").
        from_row: a record from a row with ``id``, ``columns``, ``created_at`` (and
            ``is_default`` when the kind has a default).
        to_row: a record's values for ``columns``.
        default: the built-in default's value per content column; None: no default.
    """

    collection: str
    table: str
    columns: tuple[str, ...]
    request_kind: str
    label: str
    from_row: Callable[[Mapping[str, Any]], R]
    to_row: Callable[[R], tuple[Any, ...]]
    default: Mapping[str, Any] | None = None

    @property
    def list_name(self) -> str:
        """The RPC that lists it (page tokens are bound to it): `ListEmailTemplates`."""
        return f"List{self.collection[0].upper()}{self.collection[1:]}"

    @property
    def select(self) -> str:
        default = ", is_default" if self.default is not None else ""
        return f"SELECT id, {', '.join(self.columns)}{default}, created_at FROM {self.table}"


async def create(
    conn: asyncpg.Connection,
    kind: TemplateKind[R],
    template: R,
    created_by: str,
    request_id: str = "",
) -> R:
    """Store a checked template (its id is assigned here); a retried request_id gets the
    first result."""
    template_id = uuid.uuid4()
    earlier = await idempotency.claim(conn, kind.request_kind, request_id, template_id)
    if earlier is not None:
        return await get(conn, kind, earlier)
    values = kind.to_row(template)
    await conn.execute(
        f"""
        INSERT INTO {kind.table} (tenant_id, id, {", ".join(kind.columns)}, created_by)
        VALUES (app_tenant(), $1, {_placeholders(2, len(values))}, ${len(values) + 2})
        """,
        template_id,
        *values,
        created_by,
    )
    return await get(conn, kind, template_id)


async def get(conn: asyncpg.Connection, kind: TemplateKind[R], template_id: uuid.UUID) -> R:
    """A template of the tenant, its unstored default included; NOT_FOUND otherwise."""
    row = await conn.fetchrow(f"{kind.select} WHERE id = $1", template_id)
    if row is not None:
        return kind.from_row(row)
    default = await _unstored_default(conn, kind)
    if default is not None and default.id == template_id:
        return default
    raise not_found(kind)


async def get_default(conn: asyncpg.Connection, kind: TemplateKind[R]) -> R:
    """The tenant's default template, stored on first use (a write: not in a read-only
    transaction). Concurrent first uses store it once: the later INSERTs wait for the first,
    then do nothing. They collide on the primary key (the default's id is derived from the
    tenant) as well as on the one-default index, so the INSERT names no conflict target: with
    one, a collision on the other index would raise instead."""
    if kind.default is None:
        raise ValueError(f"{kind.label} templates have no default")
    row = await conn.fetchrow(f"{kind.select} WHERE is_default")
    if row is None:
        tenant_id: uuid.UUID = await conn.fetchval("SELECT app_tenant()")
        values = tuple(kind.default[column] for column in kind.columns)
        await conn.execute(
            f"""
            INSERT INTO {kind.table}
              (tenant_id, id, {", ".join(kind.columns)}, is_default, created_by, created_at)
            SELECT app_tenant(), $1, {_placeholders(2, len(values))}, true,
                   ${len(values) + 2}, {_TENANT_SINCE}
            ON CONFLICT DO NOTHING
            """,
            default_template_id(kind, tenant_id),
            *values,
            SYSTEM_USER,
        )
        row = await conn.fetchrow(f"{kind.select} WHERE is_default")
    return kind.from_row(row)


async def use(conn: asyncpg.Connection, kind: TemplateKind[R], template_id: uuid.UUID | None) -> R:
    """The template a new batch refers to: the named one, or the tenant's default when None.

    A default is stored first, whether named or implied: the batch's foreign key needs it.
    """
    if template_id is not None:
        row = await conn.fetchrow(f"{kind.select} WHERE id = $1", template_id)
        if row is not None:
            return kind.from_row(row)
        if kind.default is None:
            raise not_found(kind)
    template = await get_default(conn, kind)
    if template_id is not None and template.id != template_id:
        raise not_found(kind)
    return template


async def list_page(
    conn: asyncpg.Connection, kind: TemplateKind[R], size: int, token: str
) -> Page[R]:
    """Templates newest first, the default included (stored or not); never writes."""
    limit = page_size(size)
    after = decode_token(kind.list_name, token)
    rows = await conn.fetch(
        f"""
        {kind.select}
        WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2)
        ORDER BY created_at DESC, id DESC
        LIMIT $3
        """,
        after.create_time if after else None,
        after.id if after else None,
        limit + 1,
    )
    items = [kind.from_row(row) for row in rows]
    default = await _unstored_default(conn, kind)
    if default is not None and (after is None or _key(default) < (after.create_time, after.id)):
        # In the place its row will have once stored, in the order the query uses.
        items = sorted([*items, default], key=_key, reverse=True)[: limit + 1]
    positions = [PagePosition(*_key(item)) for item in items]
    return Page(items[:limit], next_page_token(kind.list_name, positions, limit))


def default_template_id(kind: TemplateKind[Any], tenant_id: uuid.UUID) -> uuid.UUID:
    """The id of a tenant's default template of ``kind`` (the same before and after it is
    stored)."""
    return uuid.uuid5(_DEFAULT_NAMESPACE, f"{tenant_id}/{kind.collection}")


def not_found(kind: TemplateKind[Any]) -> NotFound:
    return NotFound(f"{kind.label} template not found", reason="TEMPLATE_NOT_FOUND")


async def _unstored_default(conn: asyncpg.Connection, kind: TemplateKind[R]) -> R | None:
    """The tenant's default as it will be stored, while it is not; None once it is (or when
    the kind has no default)."""
    if kind.default is None:
        return None
    row = await conn.fetchrow(
        f"""
        SELECT app_tenant() AS tenant_id, {_TENANT_SINCE} AS since,
               EXISTS (SELECT FROM {kind.table} WHERE is_default) AS stored
        """
    )
    if row["stored"]:
        return None
    return kind.from_row(
        {
            **kind.default,
            "id": default_template_id(kind, row["tenant_id"]),
            "is_default": True,
            "created_at": row["since"],
        }
    )


def _key(template: Listed) -> tuple[datetime.datetime, uuid.UUID]:
    # Stored rows and the unstored default always carry their create_time.
    assert template.create_time is not None
    return template.create_time, template.id


def _placeholders(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))
