"""Tenant isolation by row-level security, table by table, as the application role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import APP_ROLE
from credbatch.tenancy import TenantScope, tenant_transaction
from tests.fixtures.database import insert_row

# Every tenant-owned table. A table missing here, or a table without RLS, fails
# test_tenant_tables_are_exactly_the_rls_tables: add it here and to tenant_rows().
TENANT_TABLES = [
    "tenants",
    "idempotency_keys",
    "credential_schemas",
    "credential_schema_versions",
    "email_templates",
    "sms_templates",
    "certificate_templates",
    "batches",
    "records",
    "signing_keys",
    "status_lists",
    "status_list_tokens",
    "credentials",
    "certificates",
    "webhook_endpoints",
    "webhook_secrets",
    "webhook_events",
    "webhook_deliveries",
    "oid4vci_offers",
    "oid4vci_access_tokens",
    "oid4vci_superseded_offers",
    "invitation_resends",
    "superseded_claim_tokens",
    "audit_events",
    "record_sends",
    "record_reminders",
    "tenant_profiles",
    "schema_type_metadata",
]
# Tenant tables the application role cannot write: seeded as the owner, as their triggers do.
OWNER_SEEDED_TABLES = {"webhook_events"}
# Tenant tables that only triggers and SECURITY DEFINER functions write (the application role
# may only read them): their isolation is tested in tests/batches/test_counts.py.
DERIVED_TENANT_TABLES = ["batch_count_deltas", "batch_counts"]
# Tables that are not tenant-owned (no RLS; the application role has no access to them).
OWNER_TABLES = {
    "schema_migrations",
    "schema_repeatables",
    "dispatch_clock",
    "dispatch_tenants",
    "dispatch_batches",
    "dispatch_in_flight",
}
# Tables that are not tenant data and every role may read, none write (no RLS).
SHARED_READ_TABLES = {"record_transitions"}
# Tenant tables only the owner writes (RLS for reading; tests/db/test_tenant_limits.py).
OWNER_WRITTEN_TENANT_TABLES = {"tenant_limits"}
# Tenant tables no role but the owner reads or writes, through SECURITY DEFINER functions only
# (spent c_nonces: public_nonce_use).
DEFINER_ONLY_TENANT_TABLES = {"oid4vci_spent_nonces"}
# Indexes not led by tenant_id, each for a reason (see the migrations' comments).
CROSS_TENANT_INDEXES = {
    "credentials_claim_token_key",
    "certificates_id_key",
    "status_list_tokens_due_idx",
    "webhook_deliveries_due_idx",
    # The sweeper's: it serves every tenant, through sweep_stuck only.
    "records_stuck_idx",
    "records_invited_idx",
    "batches_cancelled_idx",
    # The janitor's: the retention purge and the pruning serve every tenant, oldest first,
    # through janitor_purge and janitor_prune only.
    "batches_purge_due_idx",
    "webhook_deliveries_completed_idx",
    "webhook_events_created_idx",
    "oid4vci_offers_expiry_idx",
    "oid4vci_access_tokens_expiry_idx",
    "idempotency_keys_age_idx",
    "invitation_resends_age_idx",
    # The audit retention's: the oldest entries of every tenant, through janitor_audit_prune.
    "audit_events_age_idx",
    # A bounce names its record by id alone, a status callback by the provider's message id
    # (public_email_deliveries, public_sms_delivery, after the VERP MAC or the signature).
    "records_id_idx",
    "record_sends_message_id_idx",
    # The relay's: the reminders in flight of every tenant, counted against its cap on work in
    # flight (reminder_claim).
    "record_reminders_queued_idx",
}

USER = "admin"


def admin(tenant_id: uuid.UUID) -> TenantScope:
    return TenantScope(tenant_id, USER, frozenset({"org_admin"}), ("default",))


def tenant_column(table: str) -> str:
    return "id" if table == "tenants" else "tenant_id"


def tenant_rows(tenant_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """One row for every tenant table, in insertion order."""
    schema_id, batch_id, record_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    email_id, sms_id, cert_tpl_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    list_id, kid = uuid.uuid4(), f"key-{uuid.uuid4()}"
    endpoint_id, event_id = uuid.uuid4(), f"msg_{uuid.uuid4().hex}"
    t = tenant_id
    return {
        "tenants": {"id": t},
        "idempotency_keys": {
            "tenant_id": t,
            "kind": "batch",
            "request_id": f"req-{uuid.uuid4()}",
            "resource_id": batch_id,
        },
        "credential_schemas": {
            "tenant_id": t,
            "id": schema_id,
            "display_name": f"Diploma {schema_id}",
            "created_by": USER,
        },
        "credential_schema_versions": {
            "tenant_id": t,
            "schema_id": schema_id,
            "version": 1,
            "attributes": [{"name": "name", "type": "STRING", "required": True}],
            "requires_certificate": True,
            "created_by": USER,
        },
        "email_templates": {
            "tenant_id": t,
            "id": email_id,
            "display_name": "Welcome",
            "subject": "Your credential",
            "html_body": "<p>{{ name }}</p>",
            "text_body": "{{ name }}",
            "is_default": True,
            "created_by": USER,
        },
        "sms_templates": {
            "tenant_id": t,
            "id": sms_id,
            "display_name": "Welcome",
            "body": "Claim {{ claim_url }}",
            "is_default": True,
            "created_by": USER,
        },
        "certificate_templates": {
            "tenant_id": t,
            "id": cert_tpl_id,
            "display_name": "Certificate",
            "title": "Certificate",
            "body": "Awarded to {{ name }}",
            "layout": {"colour": "#003366"},
            "logo": b"\x89PNG",
            "logo_mime_type": "image/png",
            "created_by": USER,
        },
        "batches": {
            "tenant_id": t,
            "id": batch_id,
            "schema_id": schema_id,
            "schema_version": 1,
            "mediums": ["EMAIL", "SMS"],
            "email_template_id": email_id,
            "sms_template_id": sms_id,
            "certificate_template_id": cert_tpl_id,
            "creator": USER,
            "department": "default",
            "filename": "holders.csv",
            "total_records": 1,
            "state": "COMPLETED",
        },
        "records": {
            "tenant_id": t,
            "id": record_id,
            "batch_id": batch_id,
            "row_number": 1,
            "state": "INVITED",
            "email": "ada@example.org",
            "phone": "+15005550006",
            "attributes": {"name": "Ada"},
        },
        "signing_keys": {
            "tenant_id": t,
            "kid": kid,
            "alg": "ES256",
            "public_jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
            "private_key_enc": b"ciphertext",
            "nonce": bytes(12),
        },
        "status_lists": {
            "tenant_id": t,
            "id": list_id,
            "size": 16,
            "next_index": 1,
            "bits": bytes(2),
        },
        "status_list_tokens": {"tenant_id": t, "list_id": list_id},
        "credentials": {
            "tenant_id": t,
            "id": uuid.uuid4(),
            "record_id": record_id,
            "batch_id": batch_id,
            "kid": kid,
            "status_list_id": list_id,
            "status_index": 0,
            "sd_jwt": "eyJ.eyJ.sig~",
            "claim_token": f"claim-{uuid.uuid4()}",
        },
        "certificates": {
            "tenant_id": t,
            "id": f"cert-{uuid.uuid4()}",
            "record_id": record_id,
            "pdf": b"%PDF-1.7",
        },
        "webhook_endpoints": {
            "tenant_id": t,
            "id": endpoint_id,
            # Disabled, and a name that never resolves: a dispatcher running in the same
            # session must not send anything anywhere for it.
            "url": "https://hooks.invalid/credbatch",
            "event_types": ["batch.completed"],
            "disabled": True,
        },
        "webhook_secrets": {
            "tenant_id": t,
            "endpoint_id": endpoint_id,
            "id": uuid.uuid4(),
            "secret_enc": b"sealed",
            "nonce": bytes(12),
            "kek_id": "0" * 16,
        },
        "webhook_events": {
            "tenant_id": t,
            "id": event_id,
            "type": "batch.completed",
            "payload": {"type": "batch.completed", "data": {"batch": f"batches/{batch_id}"}},
        },
        "webhook_deliveries": {
            "tenant_id": t,
            "id": uuid.uuid4(),
            "endpoint_id": endpoint_id,
            "event_id": event_id,
        },
        "oid4vci_offers": {
            "tenant_id": t,
            "record_id": record_id,
            "code_hash": uuid.uuid4().bytes * 2,
            "expires_at": datetime.now(UTC) + timedelta(days=1),
        },
        "oid4vci_superseded_offers": {
            "tenant_id": t,
            "code_hash": uuid.uuid4().bytes * 2,
            "record_id": record_id,
            "generation": 0,
        },
        "invitation_resends": {
            "tenant_id": t,
            "id": uuid.uuid4(),
            "batch_id": batch_id,
            "resent": 1,
            "claimed": 0,
            "revoked": 0,
            "failed": 0,
            "cancelled": 0,
            "in_progress": 0,
            "busy": 0,
        },
        "record_sends": {"tenant_id": t, "record_id": record_id, "medium": "EMAIL"},
        "record_reminders": {
            "tenant_id": t,
            "record_id": record_id,
            "batch_id": batch_id,
            "step": 1,
        },
        "schema_type_metadata": {
            "tenant_id": t,
            "schema_id": schema_id,
            "version": 1,
            "document": b"{}",
            "integrity": "sha256-" + "A" * 43 + "=",
        },
        "tenant_profiles": {"tenant_id": t, "display_name": "Tenant", "support_email": "a@b.c"},
        "oid4vci_access_tokens": {
            "tenant_id": t,
            "token_hash": uuid.uuid4().bytes * 2,
            "record_id": record_id,
            "expires_at": datetime.now(UTC) + timedelta(minutes=5),
        },
        "superseded_claim_tokens": {
            "tenant_id": t,
            "token_hash": uuid.uuid4().bytes * 2,
            "record_id": record_id,
        },
        "audit_events": {
            "tenant_id": t,
            "id": uuid.uuid4(),
            "actor": USER,
            "actor_kind": "USER",
            "action": "batch.upload",
            "resource": f"batches/{batch_id}",
            "outcome": "OK",
        },
    }


Seeded = tuple[uuid.UUID, uuid.UUID, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool) -> Seeded:
    """Tenants A and B, each with one row in every tenant table, written by the app role
    (the owner writes OWNER_SEEDED_TABLES' rows, in order, between the app's transactions)."""
    a, b = uuid.uuid4(), uuid.uuid4()
    rows = {a: tenant_rows(a), b: tenant_rows(b)}
    for tenant, tables in rows.items():
        pending = list(tables.items())
        while pending:
            if pending[0][0] in OWNER_SEEDED_TABLES:
                table, row = pending.pop(0)
                async with owner_pool.acquire() as conn:
                    await insert_row(conn, table, row)
                continue
            async with tenant_transaction(app_pool, admin(tenant)) as conn:
                while pending and pending[0][0] not in OWNER_SEEDED_TABLES:
                    table, row = pending.pop(0)
                    # Provisioned by tenant_transaction, and by the status_lists trigger.
                    if table not in ("tenants", "status_list_tokens"):
                        await insert_row(conn, table, row)
    return a, b, rows[a], rows[b]


async def primary_key(pool: asyncpg.Pool, table: str) -> list[str]:
    rows = await pool.fetch(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1::regclass AND i.indisprimary
        ORDER BY k.n
        """,
        table,
    )
    return [r["attname"] for r in rows]


def where(columns: list[str], start: int = 1) -> str:
    return " AND ".join(f"{c} = ${i}" for i, c in enumerate(columns, start))


async def test_tenant_tables_are_exactly_the_rls_tables(owner_pool: asyncpg.Pool) -> None:
    tables = await owner_pool.fetch(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
        """
    )
    rls = {t["relname"] for t in tables if t["relrowsecurity"]}
    assert rls == (
        set(TENANT_TABLES)
        | OWNER_WRITTEN_TENANT_TABLES
        | set(DERIVED_TENANT_TABLES)
        | DEFINER_ONLY_TENANT_TABLES
    )
    # Every other table is explicitly owner-only: a new table without RLS fails here.
    assert {t["relname"] for t in tables} - rls == OWNER_TABLES | SHARED_READ_TABLES
    for t in tables:
        if t["relname"] in rls:
            assert t["relforcerowsecurity"], t["relname"]
            assert t["policies"] >= 1, t["relname"]


@pytest.mark.parametrize("table", sorted(SHARED_READ_TABLES))
async def test_the_application_role_only_reads_shared_tables(
    owner_pool: asyncpg.Pool, table: str
) -> None:
    privileges = await owner_pool.fetch(
        "SELECT privilege_type FROM information_schema.role_table_grants"
        " WHERE table_name = $1 AND grantee = $2",
        table,
        APP_ROLE,
    )
    assert {p["privilege_type"] for p in privileges} == {"SELECT"}


@pytest.mark.parametrize("table", TENANT_TABLES + DERIVED_TENANT_TABLES)
async def test_tenant_id_leads_keys_and_indexes(owner_pool: asyncpg.Pool, table: str) -> None:
    indexes = await owner_pool.fetch(
        """
        SELECT c.relname, a.attname AS first_column
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = $1::regclass
        """,
        table,
    )
    assert indexes
    for index in indexes:
        if index["relname"] not in CROSS_TENANT_INDEXES:
            assert index["first_column"] == tenant_column(table), index["relname"]
    comment = await owner_pool.fetchval("SELECT obj_description($1::regclass, 'pg_class')", table)
    assert comment, f"{table} has no COMMENT"


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_reads_only_own_rows(app_pool: asyncpg.Pool, seeded: Seeded, table: str) -> None:
    a, b, _, rows_b = seeded
    col = tenant_column(table)
    pk = await primary_key(app_pool, table)
    async with tenant_transaction(app_pool, admin(a), readonly=True) as conn:
        owners = await conn.fetch(f"SELECT {col} FROM {table}")
        assert owners
        assert {r[col] for r in owners} == {a}
        by_key = await conn.fetch(
            f"SELECT * FROM {table} WHERE {where(pk)}", *(rows_b[table][c] for c in pk)
        )
        assert by_key == []
        assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {col} = $1", b) == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_cannot_update_or_delete_other_tenant(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, seeded: Seeded, table: str
) -> None:
    a, _, _, rows_b = seeded
    col = tenant_column(table)
    pk = await primary_key(app_pool, table)
    key_b = [rows_b[table][c] for c in pk]
    for statement, verb in (
        (f"UPDATE {table} SET {col} = {col} WHERE {where(pk)}", "UPDATE"),
        (f"UPDATE {table} SET {col} = {col}", "UPDATE"),
        (f"DELETE FROM {table} WHERE {where(pk)}", "DELETE"),
        (f"DELETE FROM {table}", "DELETE"),
    ):
        granted = await app_pool.fetchval(
            "SELECT has_table_privilege(current_user, $1, $2)", table, verb
        )
        params = key_b if "WHERE" in statement else []
        async with tenant_transaction(app_pool, admin(a)) as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                if granted:
                    status = await conn.execute(statement, *params)
                    if "WHERE" in statement:
                        assert status == f"{verb} 0", statement
                else:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await conn.execute(statement, *params)
            finally:
                await tx.rollback()  # keep A's own rows for the other tests
    # B's row is untouched.
    still = await owner_pool.fetchval(f"SELECT count(*) FROM {table} WHERE {where(pk)}", *key_b)
    assert still == 1


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_cannot_insert_for_other_tenant(
    app_pool: asyncpg.Pool, seeded: Seeded, table: str
) -> None:
    a, b, _, rows_b = seeded
    # Both a copy of B's row and a brand-new row for B are refused by WITH CHECK (which
    # PostgreSQL evaluates before unique and foreign key constraints).
    for row in (rows_b[table], tenant_rows(b)[table]):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(app_pool, admin(a)) as conn:
                await insert_row(conn, table, row)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_cannot_move_own_row_to_other_tenant(
    app_pool: asyncpg.Pool, seeded: Seeded, table: str
) -> None:
    a, b, rows_a, _ = seeded
    col = tenant_column(table)
    pk = await primary_key(app_pool, table)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(app_pool, admin(a)) as conn:
            await conn.execute(
                f"UPDATE {table} SET {col} = ${len(pk) + 1} WHERE {where(pk)}",
                *(rows_a[table][c] for c in pk),
                b,
            )


# Child rows naming the other tenant's parent ids: refused by RLS or by the composite
# (tenant_id, ...) foreign keys, which never cross tenants.
@pytest.mark.parametrize(
    "table",
    ["credential_schema_versions", "batches", "records", "credentials", "certificates"],
)
async def test_cannot_reference_other_tenant_rows(
    app_pool: asyncpg.Pool, seeded: Seeded, table: str
) -> None:
    a, _, _, rows_b = seeded
    row = dict(rows_b[table], tenant_id=a)
    for unique in ("id", "claim_token"):
        if unique in row:
            row[unique] = tenant_rows(a)[table][unique]
    with pytest.raises((asyncpg.ForeignKeyViolationError, asyncpg.InsufficientPrivilegeError)):
        async with tenant_transaction(app_pool, admin(a)) as conn:
            await insert_row(conn, table, row)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_nothing_visible_without_tenant(
    app_pool: asyncpg.Pool, seeded: Seeded, table: str
) -> None:
    async with app_pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
        async with conn.transaction():
            assert await conn.fetch(f"SELECT * FROM {table}") == []
