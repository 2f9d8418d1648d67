"""AIP-155 request ids: a create retried with the same request_id gets the first result.

``idempotency_keys`` maps (tenant, kind, request_id) to the id of the resource the first
request created; row-level security makes the mapping per tenant. A claim is an INSERT in the
caller's own transaction, so the key commits or rolls back together with the resource it
names. Two concurrent requests with one key meet on the primary key: the second INSERT waits
until the first transaction ends, then either takes the key (the first rolled back) or, its
statement seeing the committed row, returns the first request's resource id.

A key keeps the digest of the request it was first used with (``request_digest``): a later
request with the same key and another digest is refused (REQUEST_ID_REUSED) instead of being
answered with the first result. A unary RPC's handler names its request with ``use_request``
(the digest of the message without its request_id, for the rest of the RPC's task); an upload
digests its header and file itself and passes ``digest``. A key without a digest (stored
before digests) matches any request, as before.
"""

from __future__ import annotations

import hashlib
import uuid
from contextvars import ContextVar

import asyncpg
from google.protobuf.message import Message

from credbatch.errors import AlreadyExists, FieldViolation, InvalidArgument

MAX_REQUEST_ID_CHARS = 200
DIGEST_BYTES = 32


_request_digest: ContextVar[bytes | None] = ContextVar("credbatch_request_digest", default=None)


def digest_of(request: Message) -> bytes:
    """SHA-256 of ``request`` as sent, its ``request_id`` left out (the same request retried
    digests the same; any other field changed does not)."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


def use_request(request: Message) -> None:
    """The request this RPC's keys are claimed for, from now on in the current task."""
    _request_digest.set(digest_of(request))


def reused_error(field: str) -> AlreadyExists:
    """ALREADY_EXISTS for a request id first used with another request."""
    # The first request's resource is not named: the caller may not be allowed to see it.
    description = (
        "was already used for a different request; a retry must repeat the first request "
        "exactly, a new request needs a new request id"
    )
    return AlreadyExists(
        f"{field} {description}",
        reason="REQUEST_ID_REUSED",
        violations=[FieldViolation(field, description, "REQUEST_ID_REUSED")],
    )


def request_id_violation(request_id: str, field: str = "request_id") -> FieldViolation | None:
    """What is wrong with a request id, if anything (the table refuses longer ones)."""
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        return FieldViolation(field, f"at most {MAX_REQUEST_ID_CHARS} characters", "TOO_LONG")
    return None


async def claim(
    conn: asyncpg.Connection,
    kind: str,
    request_id: str,
    resource_id: uuid.UUID,
    field: str = "request_id",
    digest: bytes | None = None,
) -> uuid.UUID | None:
    """Record ``request_id`` -> ``resource_id`` for ``kind`` in this transaction, with the
    ``digest`` of the request when the kind keeps one.

    Returns:
        None when the key is now this transaction's (or request_id is empty: nothing to
        claim); otherwise the resource id an earlier request with this key created.

    Raises:
        InvalidArgument: naming ``field``, when the request id is too long.
        AlreadyExists: REQUEST_ID_REUSED, the earlier request had another digest.
    """
    if not request_id:
        return None
    digest = digest if digest is not None else _request_digest.get()
    violation = request_id_violation(request_id, field)
    if violation is not None:
        raise InvalidArgument(f"{field} is too long", violations=[violation])
    inserted = await conn.fetchval(claim_sql(1), kind, request_id, resource_id, digest)
    if inserted is not None:
        return None
    return await find(conn, kind, request_id, field, digest)


def claim_sql(first: int) -> str:
    """The statement of ``claim``, its parameters numbered from ``$first``: kind, request id,
    resource id, digest. It returns ``resource_id`` when the key is now the transaction's and
    no row when an earlier request holds it (then ``find`` names that request's resource).

    For a create that claims its key and writes its resource in one statement (the claim as
    a data-modifying ``WITH``, the resource written only when the claim returned a row); the
    caller checks the request id first (``request_id_violation``).
    """
    kind, request_id, resource_id, digest = (f"${first + i}" for i in range(4))
    return f"""
        INSERT INTO idempotency_keys (tenant_id, kind, request_id, resource_id, request_digest)
        VALUES (app_tenant(), {kind}, {request_id}, {resource_id}, {digest})
        ON CONFLICT DO NOTHING
        RETURNING resource_id
        """


async def find(
    conn: asyncpg.Connection,
    kind: str,
    request_id: str,
    field: str = "request_id",
    digest: bytes | None = None,
) -> uuid.UUID | None:
    """The resource an earlier request with this key created, if any.

    Raises:
        AlreadyExists: REQUEST_ID_REUSED, ``digest`` is given and the earlier request had
            another one.
    """
    row = await conn.fetchrow(
        "SELECT resource_id, request_digest FROM idempotency_keys "
        "WHERE kind = $1 AND request_id = $2",
        kind,
        request_id,
    )
    if row is None:
        return None
    earlier: bytes | None = row["request_digest"]
    if digest is not None and earlier is not None and earlier != digest:
        raise reused_error(field)
    found: uuid.UUID = row["resource_id"]
    return found
