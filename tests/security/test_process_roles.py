"""The public endpoints', the signer's, the refresher's and the janitor's own roles reach no
table.

The public process is internet-facing and the signer holds the KEK; each connects as a role of
its own (``credbatch.db.migrate.PROCESS_ROLES``) that runs only the functions answering what
it serves. As either role every table is refused, whatever the tenant setting says; and what
the public role's functions hand out, given every id, code and token a holder has, carries no
recipient's email or phone, no wrapped key and no webhook secret.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg
import pytest

from credbatch.config import APP_ROLE, JANITOR_ROLE, PUBLIC_ROLE, REFRESHER_ROLE, SIGNER_ROLE
from credbatch.signing.offer_codes import digest
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import HOLDER_PHONE
from tests.services.public.oid4vci_world import offer_one

ROLES = (PUBLIC_ROLE, SIGNER_ROLE, REFRESHER_ROLE, JANITOR_ROLE)


async def tables(owner_pool: asyncpg.Pool) -> list[str]:
    rows = await owner_pool.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p', 'v', 'm') ORDER BY relname"
    )
    return [r["relname"] for r in rows]


@pytest.mark.parametrize("role", ROLES)
async def test_the_role_is_a_plain_login_role_apart_from_the_app_role(
    owner_pool: asyncpg.Pool, role: str
) -> None:
    found = await owner_pool.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", role)
    assert found is not None and found["rolcanlogin"]
    for attribute in ("rolsuper", "rolbypassrls", "rolcreatedb", "rolcreaterole"):
        assert not found[attribute], attribute
    owned = await owner_pool.fetchval(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = $1::regrole)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole)",
        role,
    )
    assert owned == 0
    for a, b in ((APP_ROLE, role), (role, APP_ROLE)):
        assert not await owner_pool.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", a, b)


@pytest.mark.parametrize("role", ROLES)
async def test_every_table_is_refused(
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
    refresher_pool: asyncpg.Pool,
    janitor_pool: asyncpg.Pool,
    role: str,
) -> None:
    pool = {
        PUBLIC_ROLE: public_pool,
        SIGNER_ROLE: signer_pool,
        REFRESHER_ROLE: refresher_pool,
        JANITOR_ROLE: janitor_pool,
    }[role]
    assert await pool.fetchval("SELECT current_user") == role
    names = await tables(owner_pool)
    # The contact data, the wrapped keys and the webhook secrets among them.
    assert {"records", "signing_keys", "webhook_secrets"} <= set(names)
    for table in names:
        async with pool.acquire() as conn, conn.transaction():
            # A tenant set or not, the table itself is refused.
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(uuid.uuid4()))
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {table} LIMIT 1")


@pytest.mark.parametrize(
    "call",
    [
        "SELECT * FROM signer_signing_key($1)",
        "SELECT signer_grant_spend($1, NULL, $1)",
        "SELECT * FROM status_list_tokens_due(10)",
        "SELECT * FROM tenant_open_records(NULL)",
        "SELECT * FROM webhook_deliveries_claim(1, 1, 1)",
    ],
)
async def test_the_public_role_runs_no_other_process_s_function(
    public_pool: asyncpg.Pool, call: str
) -> None:
    params = [uuid.uuid4()] if "$1" in call else []
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await public_pool.fetch(call, *params)


async def test_what_the_public_functions_hand_out_holds_no_contact_data_key_or_secret(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, public_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    tenant = offered.tenant_id
    record = await owner_pool.fetchrow(
        "SELECT r.email, r.phone, c.claim_token, l.id AS list_id, k.private_key_enc"
        " FROM records r JOIN credentials c ON c.record_id = r.id"
        " JOIN status_lists l ON l.tenant_id = r.tenant_id"
        " JOIN signing_keys k ON k.tenant_id = r.tenant_id WHERE r.id = $1",
        offered.record_id,
    )
    assert record["email"] and record["phone"] == HOLDER_PHONE
    token, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    assert offered.link.tx_code is not None
    calls: list[tuple[str, list[Any]]] = [
        ("SELECT public_issuer_jwks($1)", [tenant]),
        ("SELECT * FROM public_status_list_token($1, $2)", [tenant, record["list_id"]]),
        ("SELECT * FROM public_claim($1, $2)", [tenant, record["claim_token"]]),
        ("SELECT * FROM public_credential_configurations($1)", [tenant]),
        ("SELECT * FROM public_offer($1, $2)", [tenant, digest(offered.code)]),
        (
            "SELECT public_offer_exchange($1, $2, $3, $4)",
            [tenant, digest(offered.code), digest(offered.link.tx_code), digest(token)],
        ),
        ("SELECT * FROM public_access_grant($1, $2)", [tenant, digest(token)]),
        ("SELECT public_nonce_use($1, $2, now())", [tenant, digest(nonce)]),
    ]
    handed_out: list[str] = []
    for sql, args in calls:
        rows = await public_pool.fetch(sql, *args)
        assert rows, sql
        handed_out += [repr(value) for row in rows for value in row.values()]
    everything = "\n".join(handed_out)
    assert "granted" in everything and "CLAIMED" not in everything
    for secret in (record["email"], record["phone"], record["phone"].lstrip("+")):
        assert secret not in everything
    assert repr(bytes(record["private_key_enc"])) not in everything
    assert "whsec_" not in everything
    # Only the signer claims a record, as it spends the grant: the public role cannot.
    state = await owner_pool.fetchval("SELECT state FROM records WHERE id = $1", offered.record_id)
    assert state == "INVITED"


async def test_only_the_refresher_lists_every_tenant_s_due_status_lists(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, refresher_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    due = await owner_pool.fetchrow(
        "UPDATE status_list_tokens SET due_at = now() - interval '1 hour' WHERE tenant_id = $1"
        " RETURNING tenant_id, list_id",
        offered.tenant_id,
    )
    listing = "SELECT * FROM status_list_tokens_due(100000)"
    # Not even inside the tenant's own scope.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(app_pool, service_scope(offered.tenant_id)) as conn:
            await conn.fetch(listing)
    # Ids only, of every tenant.
    rows = await refresher_pool.fetch(listing)
    assert (due["tenant_id"], due["list_id"]) in {(r["tenant_id"], r["list_id"]) for r in rows}
    assert all(set(row.keys()) == {"tenant_id", "list_id"} for row in rows)
