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
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction, TransactionState

from credbatch.db.failures import unavailable_error

ROLES = frozenset({"org_admin", "issuer", "observer", "service"})
SERVICE_USER = "system:worker"


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


def _literal(text: str) -> str:
    """``text`` as an SQL string literal, whatever it holds.

    An escape string (``E'...'``) with its backslashes and quotes doubled reads the same
    whether or not the server has ``standard_conforming_strings`` on; the client encoding
    is always UTF-8, where no multibyte character hides a quote or a backslash. A NUL would
    end the query message early, and PostgreSQL text cannot hold one anyway.
    """
    if "\x00" in text:
        raise ValueError("a tenant scope value cannot contain NUL")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _text_array(items: Iterable[str]) -> str:
    # PostgreSQL writes the array's text form, as ``$n::text[]::text`` did with a parameter.
    return "ARRAY[" + ", ".join(_literal(item) for item in items) + "]::text[]::text"


def _begin(scope: TenantScope, *, readonly: bool, durable: bool, provision: bool) -> str:
    """BEGIN, the scope's settings and, on a tenant's first write, its provisioning: one
    simple-protocol message, so one round trip where a BEGIN and a prepared statement (and
    the provisioning) took one each. The values are sent as literals (``_literal``), as a
    simple-protocol query takes no parameters."""
    tenant = _literal(str(scope.tenant_id))
    settings = [
        f"set_config('app.tenant_id', {tenant}, true)",
        f"set_config('app.user_id', {_literal(scope.user_id)}, true)",
        f"set_config('app.roles', {_text_array(sorted(scope.roles))}, true)",
        f"set_config('app.departments', {_text_array(scope.departments)}, true)",
    ]
    if not durable:
        # The commit does not wait for its WAL to reach the disk (the WAL writer flushes it
        # within a few hundred milliseconds).
        settings.append("set_config('synchronous_commit', 'off', true)")
    sql = (
        ("BEGIN READ ONLY;\n" if readonly else "BEGIN;\n") + "SELECT " + ",\n       ".join(settings)
    )
    if provision:
        sql += f";\nINSERT INTO tenants (id) VALUES ({tenant}::uuid) ON CONFLICT DO NOTHING"
    return sql


class _ScopedTransaction(Transaction):  # type: ignore[misc]  # asyncpg is untyped
    """asyncpg's transaction block, begun by ``_begin``'s message instead of a bare BEGIN.

    Everything after the start is asyncpg's own: COMMIT or ROLLBACK on leaving the block,
    savepoints for a ``conn.transaction()`` nested in it, the rollback of a connection
    released mid-transaction. The start does what ``Transaction.start`` does for an
    outermost block (asyncpg is pinned; tests/test_tenancy.py runs nested savepoints and a
    failed start through it).
    """

    __slots__ = ("_begin_sql",)

    def __init__(self, connection: asyncpg.Connection, begin_sql: str, readonly: bool) -> None:
        super().__init__(connection, None, readonly, False)
        self._begin_sql = begin_sql

    async def start(self) -> None:
        self._check_conn_validity("start")
        # asyncpg's attributes, untyped (mypy sees neither the base's slots nor their types).
        this: Any = self
        con: Any = self._connection
        if this._state is not TransactionState.NEW or con._top_xact is not None:
            raise asyncpg.InterfaceError("a tenant transaction is the connection's outermost")
        if con._protocol.is_in_transaction():
            raise asyncpg.InterfaceError("a tenant transaction cannot join an open transaction")
        con._top_xact = self
        try:
            await con.execute(self._begin_sql)
        except BaseException:
            this._state = TransactionState.FAILED
            raise
        this._state = TransactionState.STARTED


def _unwrapped(conn: asyncpg.Connection) -> asyncpg.Connection:
    # A pool hands out a proxy; the transaction keeps its state on the connection itself.
    return conn._con if isinstance(conn, PoolConnectionProxy) else conn


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
    begin = _begin(scope, readonly=readonly, durable=durable, provision=provision)
    try:
        conn = await pool.acquire()
    except OSError as error:
        raise unavailable_error(error) from error
    try:
        async with _ScopedTransaction(_unwrapped(conn), begin, readonly):
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
