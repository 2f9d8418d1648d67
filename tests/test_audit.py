"""The audit trail's table and record API, as the application role on the real PostgreSQL."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from credbatch import audit
from credbatch.audit import Action, Actor, ActorKind
from credbatch.config import APP_ROLE
from credbatch.errors import FailedPrecondition, InvalidArgument, Unavailable
from credbatch.tenancy import TenantScope, tenant_transaction


def admin(tenant_id: uuid.UUID, user: str = "admin-1") -> TenantScope:
    return TenantScope(tenant_id, user, frozenset({"org_admin"}), ("default",))


async def _entries(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> list[asyncpg.Record]:
    async with tenant_transaction(pool, admin(tenant_id), readonly=True) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM audit_events ORDER BY occurred_at, id"
        )
        return rows


async def test_an_entry_commits_with_its_transaction(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    batch = uuid.uuid4()
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        await audit.record(
            conn,
            admin(tenant),
            Action.BATCH_CANCEL,
            f"batches/{batch}",
            details={"records_cancelled": 3, "fields": ["email", "phone"]},
            request_id="req-1",
        )
    with pytest.raises(RuntimeError):
        async with tenant_transaction(app_pool, admin(tenant)) as conn:
            await audit.record(conn, admin(tenant), Action.BATCH_RETRY, f"batches/{batch}")
            raise RuntimeError("the action failed after its entry")
    (entry,) = await _entries(app_pool, tenant)
    assert entry["actor"] == "admin-1"
    assert entry["actor_kind"] == "USER"
    assert entry["action"] == "batch.cancel"
    assert entry["resource"] == f"batches/{batch}"
    assert entry["outcome"] == "OK"
    assert entry["request_id"] == "req-1"
    assert entry["details"] == {"fields": ["email", "phone"], "records_cancelled": 3}


async def test_an_entry_alongside_a_query_is_one_statement_and_commits_with_it(
    app_pool: asyncpg.Pool,
) -> None:
    tenant = uuid.uuid4()
    batch = uuid.uuid4()
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        row = await audit.record_alongside(
            conn,
            "SELECT $1::int + $2::int AS sum",
            (2, 3),
            admin(tenant),
            Action.BATCH_UPLOAD,
            f"batches/{batch}",
            details={"records": 1},
            request_id="req-2",
        )
        assert row is not None and row["sum"] == 5
    with pytest.raises(RuntimeError):
        async with tenant_transaction(app_pool, admin(tenant)) as conn:
            await audit.record_alongside(
                conn, "SELECT 1", (), admin(tenant), Action.BATCH_UPLOAD, f"batches/{batch}"
            )
            raise RuntimeError("the row said no")
    (entry,) = await _entries(app_pool, tenant)
    assert (entry["action"], entry["resource"], entry["outcome"]) == (
        "batch.upload",
        f"batches/{batch}",
        "OK",
    )
    assert entry["request_id"] == "req-2" and entry["details"] == {"records": 1}
    # The same tripwire as record: nothing is written when a detail may not be stored.
    with pytest.raises(ValueError):
        async with tenant_transaction(app_pool, admin(tenant)) as conn:
            await audit.record_alongside(
                conn,
                "SELECT 1",
                (),
                admin(tenant),
                Action.BATCH_UPLOAD,
                f"batches/{batch}",
                details={"holder": "someone@example.com"},
            )


async def test_a_service_token_is_a_service_actor(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    service = TenantScope(tenant, "billing-sync", frozenset({"service"}))
    async with tenant_transaction(app_pool, service) as conn:
        await audit.record(conn, service, Action.SCHEMA_CREATE, "credentialSchemas/x")
    (entry,) = await _entries(app_pool, tenant)
    assert (entry["actor"], entry["actor_kind"]) == ("billing-sync", "SERVICE")


async def test_the_application_role_cannot_update_delete_or_truncate(
    app_pool: asyncpg.Pool,
) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        await audit.record(conn, admin(tenant), Action.BATCH_UPLOAD, "batches/1")
    for statement in (
        "UPDATE audit_events SET outcome = 'FORGED'",
        "UPDATE audit_events SET actor = 'someone-else' WHERE tenant_id = app_tenant()",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(app_pool, admin(tenant)) as conn:
                await conn.execute(statement)
    assert len(await _entries(app_pool, tenant)) == 1


async def test_a_mistaken_grant_still_changes_nothing(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        await audit.record(conn, admin(tenant), Action.BATCH_UPLOAD, "batches/1")
    await owner_pool.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON audit_events TO {APP_ROLE}")
    try:
        for statement in (
            "UPDATE audit_events SET outcome = 'FORGED'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                async with tenant_transaction(app_pool, admin(tenant)) as conn:
                    await conn.execute(statement)
    finally:
        await owner_pool.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}")
    (entry,) = await _entries(app_pool, tenant)
    assert entry["outcome"] == "OK"


async def test_the_owner_cannot_update_either(owner_pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await owner_pool.execute("UPDATE audit_events SET outcome = 'FORGED'")


async def test_another_tenant_sees_no_entry_and_cannot_read_one_by_id(
    app_pool: asyncpg.Pool,
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    async with tenant_transaction(app_pool, admin(a)) as conn:
        entry_id = await audit.record(conn, admin(a), Action.BATCH_UPLOAD, "batches/1")
    async with tenant_transaction(app_pool, admin(b), readonly=True) as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 0
        assert await conn.fetch("SELECT * FROM audit_events WHERE id = $1", entry_id) == []
        assert (
            await conn.fetch(
                "SELECT * FROM audit_events WHERE tenant_id = $1 AND id = $2", a, entry_id
            )
            == []
        )
    # Nor write one into the other tenant's trail.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(app_pool, admin(b)) as conn:
            await audit.record(conn, admin(a), Action.BATCH_UPLOAD, "batches/1")


async def test_a_refusal_is_recorded_in_its_own_transaction(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    with pytest.raises(FailedPrecondition):
        async with (
            audit.failures_recorded(
                app_pool, admin(tenant), Action.BATCH_CANCEL, "batches/9", request_id="r-9"
            ),
            tenant_transaction(app_pool, admin(tenant)) as conn,
        ):
            await audit.record(conn, admin(tenant), Action.BATCH_CANCEL, "batches/9")
            raise FailedPrecondition("cancelled", reason="BATCH_CANCELLED")
    (entry,) = await _entries(app_pool, tenant)
    assert (entry["outcome"], entry["request_id"]) == ("BATCH_CANCELLED", "r-9")


async def test_platform_failures_are_not_recorded(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    with pytest.raises(Unavailable):
        async with audit.failures_recorded(
            app_pool, admin(tenant), Action.BATCH_CANCEL, "batches/9"
        ):
            raise Unavailable("database down", reason="DATABASE_UNAVAILABLE")
    assert await _entries(app_pool, tenant) == []


async def test_invalid_arguments_record_how_many_fields_not_their_text(
    app_pool: asyncpg.Pool,
) -> None:
    from credbatch.errors import FieldViolation

    tenant = uuid.uuid4()
    error = InvalidArgument(
        "bad",
        violations=[
            FieldViolation("rows[3].email", "'ada@example.org' is not an address", "INVALID_EMAIL")
        ],
    )
    await audit.record_failure(app_pool, admin(tenant), Action.BATCH_UPLOAD, "batches", error)
    (entry,) = await _entries(app_pool, tenant)
    assert entry["outcome"] == "INVALID_EMAIL"
    assert entry["details"] == {"violations": 1}


@pytest.mark.parametrize(
    "details",
    [
        {"holder": "ada@example.org"},
        {"phone": "+15005550006"},
        {"name": "Ada Lovelace"},
        {"emails": ["ok", "ada@example.org"]},
        {"Bad-Key": 1},
        {"nested": {"a": 1}},
    ],
)
def test_details_refuse_what_could_be_personal_data(details: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        audit.check_details(details)  # type: ignore[arg-type]


def test_a_system_actor() -> None:
    tenant = uuid.uuid4()
    actor = Actor.system(tenant, "cli:keys-rewrap")
    assert (actor.tenant_id, actor.name, actor.kind) == (
        tenant,
        "cli:keys-rewrap",
        ActorKind.SYSTEM,
    )


def test_a_request_id_that_is_not_an_id_is_stored_as_a_digest() -> None:
    assert audit.stored_request_id("upload-2026-12-06_1") == "upload-2026-12-06_1"
    digest = audit.stored_request_id("ada@example.org")
    assert digest.startswith("sha256:")
    assert "ada" not in digest
    assert audit.stored_request_id("x" * 129).startswith("sha256:")


async def test_the_application_role_cannot_date_an_entry(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(app_pool, admin(tenant)) as conn:
        await conn.execute(
            "INSERT INTO audit_events (tenant_id, id, occurred_at, actor, actor_kind, action,"
            " resource, outcome) VALUES ($1, $2, '2001-01-01Z', 'x', 'USER', 'batch.upload',"
            " '', 'OK')",
            tenant,
            uuid.uuid4(),
        )
        now = await conn.fetchval("SELECT now()")
    (entry,) = await _entries(app_pool, tenant)
    assert entry["occurred_at"] >= now


async def _aged_entry(owner_pool: asyncpg.Pool, tenant: uuid.UUID, days: float) -> uuid.UUID:
    entry_id = uuid.uuid4()
    async with owner_pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant)
        await conn.execute(
            "INSERT INTO audit_events (tenant_id, id, occurred_at, actor, actor_kind, action,"
            " resource, outcome) VALUES ($1, $2, now() - $3::float8 * interval '1 day',"
            " 'x', 'USER', 'batch.upload', '', 'OK')",
            tenant,
            entry_id,
            days,
        )
    return entry_id


async def test_the_janitor_prunes_entries_past_the_retention_only(
    janitor_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    old = [await _aged_entry(owner_pool, tenant, 500) for tenant in (a, b, a)]
    kept = [await _aged_entry(owner_pool, a, 399), await _aged_entry(owner_pool, b, 1)]
    # Steps of two: every tenant's old entries go (other runs' entries are not this old).
    assert await audit.prune(janitor_pool, 400, 2) >= 3
    left = await owner_pool.fetch(
        "SELECT id FROM audit_events WHERE id = ANY($1::uuid[])", [*old, *kept]
    )
    assert {r["id"] for r in left} == set(kept)
    assert await audit.prune_step(janitor_pool, 400, 10) == 0


async def test_only_the_janitor_may_prune(
    app_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await audit.prune_step(app_pool, 400, 10)
    # The janitor reaches entries through the function only.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await janitor_pool.execute("DELETE FROM audit_events")
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await audit.prune_step(janitor_pool, 0, 10)
