"""The tenant transaction: the one place that tells PostgreSQL who is acting.

Row-level security policies (``credbatch/db/migrations``) read ``app.tenant_id``,
``app.user_id``, ``app.roles`` and ``app.departments``. They are set here, and only here,
transaction-locally (``set_config(..., true)``), so they vanish at commit or rollback and
never leak to the next user of a pooled connection.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from credbatch.db.failures import unavailable_error

ROLES = frozenset({"org_admin", "issuer", "observer", "service"})
SERVICE_USER = "system:worker"

_SET_SCOPE = """
SELECT set_config('app.tenant_id', $1, true),
       set_config('app.user_id', $2, true),
       set_config('app.roles', $3::text[]::text, true),
       set_config('app.departments', $4::text[]::text, true)
"""
# The same, and the commit does not wait for its WAL to reach the disk (the WAL writer flushes
# it within a few hundred milliseconds): in one statement, so it costs no round trip.
_SET_SCOPE_LAZY_COMMIT = (
    _SET_SCOPE.rstrip() + ",\n       set_config('synchronous_commit', 'off', true)\n"
)
_PROVISION_TENANT = "INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING"

# Tenants known to exist, per pool (a pool is bound to one database). Keyed by id() because
# asyncpg pools cannot be weakly referenced; the entry holds the pool, so the id is not
# reused while it is there, and closed pools are dropped when a new pool comes along.
_provisioned: dict[int, tuple[asyncpg.Pool, set[uuid.UUID]]] = {}


def _known_tenants(pool: asyncpg.Pool) -> set[uuid.UUID]:
    entry = _provisioned.get(id(pool))
    if entry is None:
        for key, (other, _) in list(_provisioned.items()):
            if other.is_closing():
                del _provisioned[key]
        entry = _provisioned[id(pool)] = (pool, set())
    return entry[1]


@dataclass(frozen=True)
class TenantScope:
    """Who is acting: the tenant, the user (token ``sub``), its roles and departments.

    No departments means none: ``app.departments`` is then the empty array, and the
    department policies of row-level security match no row.
    """

    tenant_id: uuid.UUID
    user_id: str
    roles: frozenset[str]
    departments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tenant_id, uuid.UUID):
            raise TypeError("tenant_id must be a uuid.UUID")
        if not self.user_id:
            raise ValueError("user_id must not be empty")
        unknown = set(self.roles) - ROLES
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        # Accept any iterable from callers but keep the declared, hashable types.
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "departments", tuple(self.departments))


def service_scope(tenant_id: uuid.UUID, user_id: str = SERVICE_USER) -> TenantScope:
    """The scope of a worker or internal job acting for ``tenant_id`` (role ``service``)."""
    return TenantScope(tenant_id, user_id, frozenset({"service"}), ())


def user_scope(
    tenant_id: uuid.UUID, user_id: str, roles: Iterable[str], departments: Iterable[str]
) -> TenantScope:
    """A scope from token claims (roles and departments as any iterables)."""
    return TenantScope(tenant_id, user_id, frozenset(roles), tuple(departments))


def _lost(conn: asyncpg.Connection) -> bool:
    # A pool detaches the proxy of a connection it saw close, before the proxy is released;
    # a detached proxy answers every call, is_closed() included, with InterfaceError.
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, scope: TenantScope, *, readonly: bool = False, durable: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """Run a unit of work for ``scope``: one connection, one transaction, RLS scoped.

    The tenant is provisioned on first use (once per tenant per pool; read-only
    transactions skip it, as there is nothing to read for a tenant that does not exist).
    The transaction commits when the block exits normally and rolls back on an exception.
    ``durable=False`` commits without waiting for the disk (``synchronous_commit`` off): the
    commit is seen by every other transaction at once and survives the client's crash, but a
    crash of the database server within a few hundred milliseconds may undo it. Only for
    writes that something durable written later repeats.

    Raises:
        Unavailable: no connection could be opened (refused, unreachable), or the connection
            was lost during the transaction. asyncpg reports the latter as InterfaceError
            (the rollback finds the connection closed), which otherwise means misuse of its
            API; only the connection's state tells the two apart.
    """
    known = _known_tenants(pool)
    provision = not readonly and scope.tenant_id not in known
    try:
        conn = await pool.acquire()
    except OSError as error:
        raise unavailable_error(error) from error
    try:
        async with conn.transaction(readonly=readonly):
            await conn.execute(
                _SET_SCOPE if durable else _SET_SCOPE_LAZY_COMMIT,
                str(scope.tenant_id),
                scope.user_id,
                sorted(scope.roles),
                list(scope.departments),
            )
            if provision:
                await conn.execute(_PROVISION_TENANT, scope.tenant_id)
            yield conn
    except asyncpg.InterfaceError as error:
        if _lost(conn):
            raise unavailable_error(error.__context__ or error) from error
        raise
    finally:
        await pool.release(conn)
    # Only after commit: a rolled-back provisioning must be retried next time.
    if provision:
        known.add(scope.tenant_id)
