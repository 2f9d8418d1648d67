"""Database failures by kind, and the CredbatchError each kind is answered with.

The kind is decided by asyncpg exception class, each of which stands for one SQLSTATE or one
SQLSTATE class (asyncpg maps an unknown code to the class of its first two characters), never
by message text: messages depend on the server's version and ``lc_messages``.

* CONFLICT, answered ABORTED: 40001 serialization_failure and 40P01 deadlock_detected. The
  server rolled the whole transaction back, so running it again may succeed
  (``credbatch.db.retry``). The rest of class 40 is not a conflict: 40002 is a constraint
  violated at commit, and after 40003 nobody knows whether the statement took effect.
* UNAVAILABLE, answered UNAVAILABLE: class 08 (connection exception, which includes asyncpg's
  ConnectionDoesNotExistError for a connection lost mid-statement), class 53 (insufficient
  resources: too many connections, out of memory, disk full), 57P01 admin_shutdown (also
  pg_terminate_backend), 57P02 crash_shutdown, 57P03 cannot_connect_now, and a refused or
  reset socket (ConnectionError) when connecting. A connection lost between statements shows
  as asyncpg's InterfaceError, which also means API misuse; ``credbatch.tenancy`` tells the
  two apart by the state of its connection and raises Unavailable for a lost one.
* CANCELED, answered DEADLINE_EXCEEDED when the RPC's deadline has passed and CANCELLED
  otherwise: 57014 query_canceled (statement_timeout, pg_cancel_backend).
"""

from __future__ import annotations

import enum

import asyncpg

from credbatch.errors import Aborted, Cancelled, CredbatchError, DeadlineExceeded, Unavailable


class DbFailure(enum.Enum):
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    CANCELED = "canceled"


_CONFLICTS = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
)


def classify(error: BaseException) -> DbFailure | None:
    """The kind of database failure ``error`` is, or None for any other error."""
    if isinstance(error, _CONFLICTS):
        return DbFailure.CONFLICT
    if isinstance(error, _UNAVAILABLE):
        return DbFailure.UNAVAILABLE
    if isinstance(error, asyncpg.QueryCanceledError):
        return DbFailure.CANCELED
    return None


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` rolled back a transaction that may succeed when run again."""
    return classify(error) is DbFailure.CONFLICT


def _metadata(error: BaseException) -> dict[str, str]:
    sqlstate = getattr(error, "sqlstate", None)
    return {"sqlstate": sqlstate} if isinstance(sqlstate, str) else {}


def conflict_error(error: BaseException, attempts: int) -> Aborted:
    """ABORTED for a conflict that persisted over ``attempts`` runs of the transaction."""
    return Aborted(
        f"the transaction conflicted with a concurrent one ({attempts} attempts); try again",
        reason="TRANSACTION_CONFLICT",
        metadata={**_metadata(error), "attempts": str(attempts)},
    )


def unavailable_error(error: BaseException | None = None) -> Unavailable:
    """UNAVAILABLE for a database that cannot be reached or cannot take the work now."""
    return Unavailable(
        "the database is unavailable; try again",
        reason="DATABASE_UNAVAILABLE",
        metadata=_metadata(error) if error is not None else None,
    )


def as_credbatch_error(error: BaseException, *, deadline_passed: bool) -> CredbatchError | None:
    """The error to answer for a database failure, or None when ``error`` is not one.

    Messages are fixed texts: the server's may quote values, personal data included.
    """
    kind = classify(error)
    if kind is DbFailure.CONFLICT:
        return conflict_error(error, 1)
    if kind is DbFailure.UNAVAILABLE:
        return unavailable_error(error)
    if kind is DbFailure.CANCELED:
        if deadline_passed:
            return DeadlineExceeded(
                "the deadline passed while a database statement ran",
                reason="STATEMENT_DEADLINE_EXCEEDED",
                metadata=_metadata(error),
            )
        return Cancelled(
            "a database statement was cancelled (statement timeout or operator)",
            reason="STATEMENT_CANCELLED",
            metadata=_metadata(error),
        )
    return None
