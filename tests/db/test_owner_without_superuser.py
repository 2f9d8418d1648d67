"""The SECURITY DEFINER functions work when the owner is no superuser, as in production.

Development migrates as ``postgres``, a superuser, which row-level security never restricts;
production's owner (``credbatch_owner`` in deploy/) is a plain role, and FORCE ROW LEVEL
SECURITY applies to it, so each function that runs as the owner finds rows only through the
owner's own policies. Here a database owned by a plain role is migrated by it, and the
functions of the public endpoints, the signer, the status list refresher, the relay's count
fold and the janitor, and the erasure on request, each find the rows they serve.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.migrate import migrate
from credbatch.db.pool import create_pool
from credbatch.env_values import derive_role_url
from credbatch.signing import opaque
from credbatch.signing.offer_codes import digest
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from tests.fixtures.database import drop_database, insert_row, on_database
from tests.services.public.oid4vci_world import offer_one


@dataclass(frozen=True)
class PlainOwned:
    settings: Settings
    app: asyncpg.Pool
    public: asyncpg.Pool
    signer: asyncpg.Pool
    refresher: asyncpg.Pool
    relay: asyncpg.Pool
    janitor: asyncpg.Pool


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def plain_owned(db_settings: Settings) -> AsyncIterator[PlainOwned]:
    owner = f"credbatch_test_owner_{secrets.token_hex(4)}"
    name = f"credbatch_plain_{secrets.token_hex(6)}"
    settings = on_database(db_settings, name)
    superuser = await asyncpg.connect(db_settings.database_url, database="postgres")
    await superuser.execute(f'CREATE ROLE "{owner}" LOGIN NOSUPERUSER NOBYPASSRLS')
    await superuser.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    try:
        await migrate(derive_role_url(settings.database_url, owner))
        pools = [
            await create_pool(url, max_size=2)
            for url in (
                settings.app_database_url,
                settings.public_database_url,
                settings.signer_database_url,
                settings.refresher_database_url,
                settings.relay_database_url,
                settings.janitor_database_url,
            )
        ]
        try:
            yield PlainOwned(settings, *pools)
        finally:
            for pool in pools:
                await pool.close()
    finally:
        await drop_database(settings.database_url)
        await superuser.execute(f'DROP ROLE IF EXISTS "{owner}"')
        await superuser.close()


async def test_the_owner_is_no_superuser(plain_owned: PlainOwned) -> None:
    owner = await plain_owned.app.fetchval(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'records'"
    )
    assert owner.startswith("credbatch_test_owner_")
    assert not await plain_owned.app.fetchval(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1", owner
    )


async def test_every_table_an_owner_s_function_reads_has_an_owner_policy(
    plain_owned: PlainOwned,
) -> None:
    # A function's text naming a table (outside comments) is how it reads it: SQL and PL/pgSQL
    # bodies record no dependency on the tables they query.
    unreachable = await plain_owned.app.fetch(
        """
        SELECT c.relname, string_agg(DISTINCT p.proname, ', ' ORDER BY p.proname) AS readers
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_proc p ON p.prosecdef AND p.proowner = c.relowner
          AND regexp_replace(p.prosrc, '--[^\\n]*', '', 'g') ~ ('\\m' || c.relname || '\\M')
        WHERE c.relkind IN ('r', 'p') AND c.relforcerowsecurity
          AND NOT EXISTS (SELECT 1 FROM pg_policy pol
                          WHERE pol.polrelid = c.oid AND c.relowner = ANY (pol.polroles))
        GROUP BY c.relname ORDER BY c.relname
        """
    )
    assert [dict(row) for row in unreachable] == []


async def test_every_table_an_owner_s_function_writes_has_an_owner_policy_for_it(
    plain_owned: PlainOwned,
) -> None:
    unwritable = await plain_owned.app.fetch(
        """
        WITH verbs (cmd, pattern) AS (VALUES
          ('w', '\\mUPDATE\\s+(public\\.)?'),
          ('d', '\\mDELETE\\s+FROM\\s+(public\\.)?'),
          ('a', '\\mINSERT\\s+INTO\\s+(public\\.)?'))
        SELECT c.relname, v.cmd, string_agg(DISTINCT p.proname, ', ' ORDER BY p.proname)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        CROSS JOIN verbs v
        JOIN pg_proc p ON p.prosecdef AND p.proowner = c.relowner
          AND regexp_replace(p.prosrc, '--[^\\n]*', '', 'g') ~* (v.pattern || c.relname || '\\M')
        WHERE c.relkind IN ('r', 'p') AND c.relforcerowsecurity
          AND NOT EXISTS (SELECT 1 FROM pg_policy pol
                          WHERE pol.polrelid = c.oid AND c.relowner = ANY (pol.polroles)
                            AND pol.polcmd IN (v.cmd, '*'))
        GROUP BY c.relname, v.cmd ORDER BY c.relname, v.cmd
        """
    )
    assert [tuple(row) for row in unwritable] == []


async def test_every_role_s_functions_find_their_rows(plain_owned: PlainOwned) -> None:
    world = plain_owned
    offered = await offer_one(world.app)
    tenant, code, tx_code = offered.tenant_id, digest(offered.code), offered.link.tx_code
    assert tx_code is not None
    certificate = opaque.new_id(tenant)
    async with tenant_transaction(world.app, service_scope(tenant)) as conn:
        claim_token = await conn.fetchval(
            "SELECT claim_token FROM credentials WHERE record_id = $1", offered.record_id
        )
        list_id = await conn.fetchval(
            "UPDATE status_list_tokens SET due_at = now() - interval '1 hour'"
            " WHERE tenant_id = $1 RETURNING list_id",
            tenant,
        )
        await insert_row(
            conn,
            "certificates",
            {"tenant_id": tenant, "id": certificate, "record_id": offered.record_id, "pdf": b"%"},
        )
    public, signer = world.public, world.signer
    assert len(await public.fetch("SELECT public_issuer_jwks($1)", tenant)) == 1
    assert await public.fetchrow("SELECT * FROM public_status_list_token($1, $2)", tenant, list_id)
    assert (
        await public.fetchval("SELECT pdf FROM public_certificate($1, $2)", tenant, certificate)
        == b"%"
    )
    assert await public.fetchrow("SELECT * FROM public_claim($1, $2)", tenant, claim_token)
    assert await public.fetch("SELECT * FROM public_credential_configurations($1)", tenant)
    assert await public.fetchrow("SELECT * FROM public_offer($1, $2)", tenant, code)
    token = digest(secrets.token_urlsafe(32))
    exchange = "SELECT public_offer_exchange($1, $2, $3, $4)"
    assert await public.fetchval(exchange, tenant, code, digest(tx_code), token) == "granted"
    grant = await public.fetchrow("SELECT * FROM public_access_grant($1, $2)", tenant, token)
    assert grant is not None and grant["record_id"] == offered.record_id
    nonce = digest(secrets.token_urlsafe(32))
    expiry = datetime.now(UTC) + timedelta(minutes=5)
    assert await public.fetchval("SELECT public_nonce_use($1, $2, $3)", tenant, nonce, expiry)
    record = offered.record_id
    assert await signer.fetchrow("SELECT * FROM signer_signing_key($1)", tenant)
    spend = "SELECT signer_grant_spend($1, $2, $3)"
    assert await signer.fetchval(spend, tenant, token, record)
    due = await world.refresher.fetch("SELECT * FROM status_list_tokens_due(100)")
    assert (tenant, list_id) in {(r["tenant_id"], r["list_id"]) for r in due}
    assert await world.relay.fetchval("SELECT batch_counts_fold(NULL, NULL)") > 0
    async with tenant_transaction(world.app, service_scope(tenant), readonly=True) as conn:
        state = await conn.fetchval("SELECT state FROM records WHERE id = $1", record)
        claimed = await conn.fetchval(
            "SELECT n FROM batch_counts WHERE tenant_id = $1 AND state = 'CLAIMED'", tenant
        )
    assert (state, claimed) == ("CLAIMED", 1)


async def test_the_purge_the_erasure_and_the_pruning_find_their_rows(
    plain_owned: PlainOwned,
) -> None:
    world = plain_owned
    old, asked = await offer_one(world.app), await offer_one(world.app)
    for offered in (old, asked):
        async with tenant_transaction(world.app, service_scope(offered.tenant_id)) as conn:
            await insert_row(
                conn,
                "certificates",
                {
                    "tenant_id": offered.tenant_id,
                    "id": opaque.new_id(offered.tenant_id),
                    "record_id": offered.record_id,
                    "pdf": b"%",
                },
            )
    async with tenant_transaction(world.app, service_scope(old.tenant_id)) as conn:
        # The tenant's own period, read by the purge through the owner's policy.
        await insert_row(conn, "tenant_profiles", {"tenant_id": old.tenant_id, "retention_days": 7})
        await conn.execute(
            "UPDATE batches SET state = 'COMPLETED', completed_at = now() - interval '8 days'"
        )
        await insert_row(
            conn,
            "idempotency_keys",
            {
                "tenant_id": old.tenant_id,
                "kind": "batch",
                "request_id": "old",
                "resource_id": old.record_id,
                "created_at": datetime.now(UTC) - timedelta(days=9),
            },
        )

    purged = await world.janitor.fetch("SELECT * FROM janitor_purge(30, 1000)")
    pruned = await world.janitor.fetchval(
        "SELECT janitor_prune('idempotency_keys', now() - interval '7 days', 1000)"
    )
    admin = TenantScope(asked.tenant_id, "admin", frozenset({"org_admin"}), ("default",))
    async with tenant_transaction(world.app, admin) as conn:
        erased = await conn.fetchval("SELECT holder_records_erase($1::uuid[])", [asked.record_id])

    assert [(r["tenant_id"], r["purged"], r["done"]) for r in purged] == [(old.tenant_id, 1, True)]
    assert (pruned, erased) == (1, 1)
    for offered, reason in ((old, "RETENTION"), (asked, "ERASURE")):
        async with tenant_transaction(world.app, service_scope(offered.tenant_id)) as conn:
            row = await conn.fetchrow(
                "SELECT r.email, r.purge_reason, c.sd_jwt,"
                " (SELECT count(*) FROM certificates WHERE record_id = r.id) AS certificates,"
                " (SELECT count(*) FROM oid4vci_offers WHERE record_id = r.id) AS offers"
                " FROM records r JOIN credentials c ON c.record_id = r.id WHERE r.id = $1",
                offered.record_id,
            )
        assert row is not None
        assert tuple(row.values()) == (None, reason, "", 0, 0)


async def test_an_offer_a_resend_replaced_is_gone_and_counted(plain_owned: PlainOwned) -> None:
    world = plain_owned
    offered = await offer_one(world.app)
    tenant, old_code = offered.tenant_id, digest(offered.code)
    async with tenant_transaction(world.app, service_scope(tenant)) as conn:
        claim_token = await conn.fetchval(
            "SELECT claim_token FROM credentials WHERE record_id = $1", offered.record_id
        )
        await insert_row(
            conn,
            "oid4vci_superseded_offers",
            {
                "tenant_id": tenant,
                "code_hash": old_code,
                "record_id": offered.record_id,
                "generation": 0,
            },
        )
        await conn.execute("DELETE FROM oid4vci_offers WHERE record_id = $1", offered.record_id)

    gone = await world.public.fetchrow("SELECT * FROM public_offer($1, $2)", tenant, old_code)
    claim = await world.public.fetchrow("SELECT * FROM public_claim($1, $2)", tenant, claim_token)

    assert gone is not None and gone["revoked"]
    assert claim is not None and claim[-1] == 1
