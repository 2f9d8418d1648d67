"""Credential schemas in PostgreSQL: a schema row and its immutable versions.

Every function takes a connection from credbatch.tenancy.tenant_transaction: row-level
security scopes it to the caller's tenant, so another tenant's schemas are simply absent
(NOT_FOUND). A new schema claims its AIP-155 request id in ``idempotency_keys``; a new version
is a second resource of the same schema, so its request id is kept on the version row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from credbatch.catalog.model import Page, SchemaDraft, StoredSchema
from credbatch.db import idempotency
from credbatch.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from credbatch.paging import PagePosition, decode_token, next_page_token, page_size
from credbatch.schema.model import Attribute, AttributeType, SchemaVersion

LIST_SCHEMAS = "ListCredentialSchemas"
_REQUEST_KIND = "credential_schema"

# The columns a StoredSchema is read from (``schema_from_row``), of ``s`` the schema and ``v``
# its version.
SCHEMA_COLUMNS = """
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
            **({"labels": dict(a.labels)} if a.labels else {}),
        }
        for a in attributes
    ]


def schema_from_row(row: Mapping[str, Any]) -> StoredSchema:
    """The schema of a row of ``SCHEMA_COLUMNS``."""
    attributes = tuple(
        Attribute(
            name=item["name"],
            type=AttributeType(item["type"]),
            required=bool(item.get("required", False)),
            description=item.get("description", ""),
            enum_values=tuple(item.get("enum_values", ())),
            labels=tuple(item.get("labels", {}).items()),
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
                "SCHEMA_NAME_TAKEN",
            )
        ],
    )


async def create_schema(
    conn: asyncpg.Connection, draft: SchemaDraft, created_by: str, request_id: str = ""
) -> StoredSchema:
    """Create a schema at version 1 (the draft is assumed checked by schema.rules)."""
    schema_id = uuid.uuid4()
    earlier = await idempotency.claim(conn, _REQUEST_KIND, request_id, schema_id)
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


def schema_select(schema_id: str, version: str) -> str:
    """The read of a schema version (``version`` NULL: the latest), the parameters named."""
    return f"""
        SELECT {SCHEMA_COLUMNS}
        FROM credential_schemas s
        JOIN credential_schema_versions v
          ON v.tenant_id = s.tenant_id AND v.schema_id = s.id
         AND v.version = coalesce({version}::integer, s.latest_version)
        WHERE s.id = {schema_id}::uuid
        """


def schema_not_found() -> NotFound:
    return NotFound("schema not found", reason="SCHEMA_NOT_FOUND")


async def get_schema(
    conn: asyncpg.Connection, schema_id: uuid.UUID, version: int | None = None
) -> StoredSchema:
    """A version of a schema (the latest when version is None); NOT_FOUND otherwise."""
    row = await conn.fetchrow(schema_select("$1", "$2"), schema_id, version)
    if row is None:
        raise schema_not_found()
    return schema_from_row(row)


async def list_schemas(conn: asyncpg.Connection, size: int, token: str) -> Page[StoredSchema]:
    """The latest version of each schema, newest schema first."""
    limit = page_size(size)
    after = decode_token(LIST_SCHEMAS, token)
    rows = await conn.fetch(
        f"""
        SELECT {SCHEMA_COLUMNS}, s.created_at AS schema_created_at
        FROM credential_schemas s
        JOIN credential_schema_versions v
          ON v.tenant_id = s.tenant_id AND v.schema_id = s.id AND v.version = s.latest_version
        WHERE $1::timestamptz IS NULL OR (s.created_at, s.id) < ($1, $2)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT $3
        """,
        after.create_time if after else None,
        after.id if after else None,
        limit + 1,
    )
    # Pages follow the schema's creation, not its latest version's.
    positions = [PagePosition(row["schema_created_at"], row["id"]) for row in rows]
    return Page(
        [schema_from_row(row) for row in rows[:limit]],
        next_page_token(LIST_SCHEMAS, positions, limit),
    )
