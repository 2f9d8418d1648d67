"""The audit trail: one entry per action of a caller that changes something.

Who may call it: every service and command that changes a tenant's data on a caller's behalf
(an upload, a cancel, a template created, a webhook secret rotated, a key rewrapped ...).

* ``record(conn, actor, action, resource, ...)`` appends the entry of an action that was
  done, with one INSERT in the action's own transaction: the entry commits with the change
  and rolls back with it, so the trail never claims a change that did not happen nor misses
  one that did. ``conn`` is a tenant transaction of the actor's tenant (row-level security
  refuses any other tenant), or the owner's connection of a system command.
* ``record_failure(pool, actor, action, resource, error, ...)`` appends the entry of an action
  that was refused, in a transaction of its own (the action's rolled back), after the fact.
  ``failures_recorded(...)`` wraps an action with it.
* ``prune(janitor_pool, retention_days, step_rows)`` deletes the entries past the audit
  retention period (``CREDBATCH_AUDIT_RETENTION_DAYS``), as the janitor's role, in steps.

Which refusals are recorded (``is_recorded_refusal``): the ones the caller's request earned:
permission denied (a role that may not call the RPC, recorded by the edge interceptor),
invalid arguments, not found (which is also what row-level security answers for another
tenant's or another issuer's batch), already exists, failed precondition (retrying a
cancelled batch) and resource exhausted (a quota). Not recorded: failures of the platform
rather than of the request (UNAVAILABLE, ABORTED conflicts the edge runs again, CANCELLED,
DEADLINE_EXCEEDED, INTERNAL): the action did nothing, the request may simply be sent again,
and metrics and logs cover them. Nor an unauthenticated call: it names no tenant to file
it under.

No personal data in clear. The actor is the caller token's subject (the operator, never a
holder) or a system component's name; the resource is a resource name made of ids
(``batches/{id}``); ``details`` hold counts, field names, ids and reasons. As a tripwire,
``details`` refuse any string outside ``[A-Za-z0-9_.:/-]`` (so no ``@``, ``+`` or space: no
email address or formatted phone number can slip in) and any nesting beyond lists of
scalars.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from opentelemetry import trace

from credbatch.errors import (
    AlreadyExists,
    CredbatchError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from credbatch.tenancy import TenantScope, tenant_transaction

log = logging.getLogger(__name__)

OK = "OK"


class Action(enum.StrEnum):
    """The fixed vocabulary of audited actions: ``<resource kind>.<verb>``."""

    BATCH_UPLOAD = "batch.upload"
    BATCH_CANCEL = "batch.cancel"
    BATCH_RETRY = "batch.retry"
    RECORDS_REVOKE = "records.revoke"
    INVITATIONS_RESEND = "invitations.resend"
    RECORD_CONTACT_UPDATE = "record.contact_update"
    HOLDER_ERASE = "holder.erase"
    SCHEMA_CREATE = "schema.create"
    SCHEMA_VERSION_CREATE = "schema_version.create"
    EMAIL_TEMPLATE_CREATE = "email_template.create"
    SMS_TEMPLATE_CREATE = "sms_template.create"
    CERTIFICATE_TEMPLATE_CREATE = "certificate_template.create"
    WEBHOOK_ENDPOINT_CREATE = "webhook_endpoint.create"
    WEBHOOK_ENDPOINT_UPDATE = "webhook_endpoint.update"
    WEBHOOK_ENDPOINT_DELETE = "webhook_endpoint.delete"
    WEBHOOK_SECRET_ROTATE = "webhook_secret.rotate"  # noqa: S105 - an action name
    WEBHOOK_EVENT_REDELIVER = "webhook_event.redeliver"
    TENANT_PROFILE_UPDATE = "tenant_profile.update"
    TENANT_LIMITS_UPDATE = "tenant_limits.update"
    SIGNING_KEYS_REWRAP = "signing_keys.rewrap"
    WEBHOOK_SECRETS_REWRAP = "webhook_secrets.rewrap"


class ActorKind(enum.StrEnum):
    """Who acted: a person's token, a platform service's token, or a system command."""

    USER = "USER"
    SERVICE = "SERVICE"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True)
class Actor:
    """The tenant an entry belongs to and who acted in it."""

    tenant_id: uuid.UUID
    name: str
    kind: ActorKind

    @classmethod
    def of(cls, caller: TenantScope) -> Actor:
        """The actor of an RPC: the token's subject; a ``service`` token is a SERVICE."""
        kind = ActorKind.SERVICE if "service" in caller.roles else ActorKind.USER
        return cls(caller.tenant_id, caller.user_id, kind)

    @classmethod
    def system(cls, tenant_id: uuid.UUID, component: str) -> Actor:
        """A command or process acting without a caller (e.g. ``cli:keys-rewrap``)."""
        return cls(tenant_id, component, ActorKind.SYSTEM)


DetailValue = int | float | bool | str | None | Sequence[int | float | bool | str | None]
Details = Mapping[str, DetailValue]

_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.:/-]{0,200}")
_SAFE_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_LIST = 100


def _insert_sql(first: int) -> str:
    # The entry's INSERT with its ten parameters numbered from $first (_entry_args).
    values = [f"${first + i}" for i in range(10)]
    return f"""
INSERT INTO audit_events
  (tenant_id, id, actor, actor_kind, action, resource, outcome, request_id, trace_id, details)
VALUES ({", ".join(values)}::text::jsonb)
"""


_INSERT = _insert_sql(1)

_PRUNE = "SELECT janitor_audit_prune($1, $2)"

_RECORDED_REFUSALS: tuple[type[CredbatchError], ...] = (
    PermissionDenied,
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
)


def _check_scalar(key: str, value: object) -> None:
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if not _SAFE_TEXT.fullmatch(value):
            raise ValueError(
                f"audit detail {key!r}: text may hold only [A-Za-z0-9_.:/-], at most 200 "
                "characters (ids, field names, reasons; never contact data)"
            )
        return
    raise TypeError(f"audit detail {key!r}: {type(value).__name__} is not a scalar")


def check_details(details: Details) -> dict[str, DetailValue]:
    """``details`` as stored, after the personal-data tripwire.

    Raises:
        ValueError, TypeError: naming the key whose value may not be stored.
    """
    checked: dict[str, DetailValue] = {}
    for key, value in details.items():
        if not _SAFE_KEY.fullmatch(key):
            raise ValueError(f"audit detail key {key!r} must be lower_snake_case")
        if isinstance(value, Sequence) and not isinstance(value, str):
            if len(value) > _MAX_LIST:
                raise ValueError(f"audit detail {key!r}: more than {_MAX_LIST} items")
            for item in value:
                _check_scalar(key, item)
            checked[key] = list(value)
        else:
            _check_scalar(key, value)
            checked[key] = value
    return checked


def stored_request_id(request_id: str) -> str:
    """The request id as stored: itself when it reads as an id, else its SHA-256 prefix.

    A request id is free text chosen by the caller; one that could carry anything else (a
    space, an ``@``, more than 128 characters) is kept only as a digest, which still matches
    the same id sent again.
    """
    if len(request_id) <= 128 and _SAFE_TEXT.fullmatch(request_id):
        return request_id
    return "sha256:" + hashlib.sha256(request_id.encode()).hexdigest()[:32]


def _trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _actor(actor: Actor | TenantScope) -> Actor:
    return actor if isinstance(actor, Actor) else Actor.of(actor)


def _entry_args(
    actor: Actor | TenantScope,
    action: Action,
    resource: str,
    outcome: str,
    details: Details | None,
    request_id: str,
) -> tuple[object, ...]:
    # The parameters of _INSERT, in order; the entry's id second.
    who = _actor(actor)
    return (
        who.tenant_id,
        uuid.uuid4(),
        who.name,
        who.kind.value,
        Action(action).value,
        resource,
        outcome,
        stored_request_id(request_id),
        _trace_id(),
        json.dumps(check_details(details or {}), separators=(",", ":")),
    )


async def record(
    conn: asyncpg.Connection,
    actor: Actor | TenantScope,
    action: Action,
    resource: str,
    *,
    outcome: str = OK,
    details: Details | None = None,
    request_id: str = "",
) -> uuid.UUID:
    """Append one entry in ``conn``'s transaction; returns its id.

    Args:
        conn: the action's transaction (a tenant transaction of ``actor``'s tenant, or the
            owner's connection for a system command).
        actor: the caller (its token's subject) or a system ``Actor``.
        action: what was done.
        resource: the resource name acted on (``batches/{id}``), or the collection for a
            create that failed before an id existed (``webhookEndpoints``).
        outcome: ``OK``, or the reason of the error that refused the action.
        details: counts, field names, ids (see the module docstring).
        request_id: the request's ``request_id``, when it has one (``stored_request_id``).
    """
    args = _entry_args(actor, action, resource, outcome, details, request_id)
    await conn.execute(_INSERT, *args)
    entry_id = args[1]
    assert isinstance(entry_id, uuid.UUID)
    return entry_id


async def record_alongside(
    conn: asyncpg.Connection,
    query: str,
    query_args: Sequence[object],
    actor: Actor | TenantScope,
    action: Action,
    resource: str,
    *,
    details: Details | None = None,
    request_id: str = "",
) -> asyncpg.Record | None:
    """Append one OK entry (as ``record``) in the statement that runs ``query``: one round
    trip for both. Returns ``query``'s first row.

    ``query`` is a SELECT whose parameters are ``$1`` to ``$n`` (``n = len(query_args)``);
    the entry is inserted by a data-modifying ``WITH`` before it, which PostgreSQL runs in
    the same statement in no set order (``query`` must not read the audit log). In the same
    transaction, too: an error the caller raises from the row rolls the entry back with the
    rest of it.
    """
    insert = _insert_sql(len(query_args) + 1)
    args = _entry_args(actor, action, resource, OK, details, request_id)
    row: asyncpg.Record | None = await conn.fetchrow(
        f"WITH audit_entry AS ({insert})\n{query}", *query_args, *args
    )
    return row


async def prune_step(
    janitor: asyncpg.Pool | asyncpg.Connection, retention_days: int, limit: int
) -> int:
    """Delete up to ``limit`` entries older than ``retention_days``, of every tenant; how many.

    ``janitor`` connects as the janitor's role, the only one allowed to run
    ``janitor_audit_prune`` (the application role may never delete an entry). Each call is
    one short transaction; call again while it returns ``limit``.
    """
    deleted: int = await janitor.fetchval(_PRUNE, retention_days, limit)
    return deleted


async def prune(
    janitor: asyncpg.Pool | asyncpg.Connection, retention_days: int, step_rows: int
) -> int:
    """Delete every entry older than ``retention_days``, ``step_rows`` per transaction."""
    total = 0
    while True:
        deleted = await prune_step(janitor, retention_days, step_rows)
        total += deleted
        if deleted < step_rows:
            return total


def is_recorded_refusal(error: BaseException) -> bool:
    """Whether a failed action is recorded (the refusals the request earned)."""
    return isinstance(error, _RECORDED_REFUSALS)


def _refusal_details(error: CredbatchError) -> dict[str, DetailValue]:
    # Only how many fields were wrong: a violation's text may quote the value it refuses.
    return {"violations": len(error.violations)} if error.violations else {}


async def record_failure(
    pool: asyncpg.Pool,
    actor: Actor | TenantScope,
    action: Action,
    resource: str,
    error: CredbatchError,
    *,
    details: Details | None = None,
    request_id: str = "",
) -> None:
    """Append the entry of a refused action in a transaction of its own.

    Never raises for a database failure: the caller is about to answer with ``error``, and
    an audit write that fails must not replace that answer. The failure is logged (without
    the details).
    """
    who = _actor(actor)
    scope = (
        actor
        if isinstance(actor, TenantScope)
        else TenantScope(who.tenant_id, who.name, frozenset({"service"}))
    )
    try:
        async with tenant_transaction(pool, scope) as conn:
            await record(
                conn,
                who,
                action,
                resource,
                outcome=error.reason,
                details={**(details or {}), **_refusal_details(error)},
                request_id=request_id,
            )
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, CredbatchError) as failure:
        log.warning(
            "audit entry of a refused %s not stored (%s)", action.value, type(failure).__name__
        )


@asynccontextmanager
async def failures_recorded(
    pool: asyncpg.Pool,
    actor: Actor | TenantScope,
    action: Action,
    resource: str,
    *,
    request_id: str = "",
) -> AsyncIterator[None]:
    """Run an action; if it is refused (``is_recorded_refusal``), record that, then re-raise.

    The action records its own success with ``record`` in its transaction.
    """
    try:
        yield
    except CredbatchError as error:
        if is_recorded_refusal(error) and not error.audited:
            await record_failure(pool, actor, action, resource, error, request_id=request_id)
            error.audited = True
        raise
