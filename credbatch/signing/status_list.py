"""IETF Token Status Lists: index reservation for new credentials and the signed list token.

Indexes are handed out in blocks: one short transaction moves a list's ``next_index`` forward
by a whole block (``UPDATE ... SET next_index = next_index + n ... RETURNING``), so concurrent
workers never collide on an index and the list row is locked for microseconds, not for the
issuance of a whole group. An index is never reused: a block left unused by a process that
stops is simply skipped. When no open list has room a new one is created.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

from credbatch.signing.jose import b64url, sign_compact
from credbatch.tenancy import service_scope, tenant_transaction

if TYPE_CHECKING:
    # Only the type: the public endpoints import this module and must not load key handling.
    from credbatch.signing.keys import SigningKey

TYP = "statuslist+jwt"
MEDIA_TYPE = "application/statuslist+jwt"
DEFAULT_LIST_SIZE = 1 << 17
VALID = 0
INVALID = 1

_RESERVE = """
UPDATE status_lists SET next_index = next_index + $2, updated_at = now()
WHERE tenant_id = $1 AND next_index + $2 <= size
  AND id = (SELECT id FROM status_lists
            WHERE tenant_id = $1 AND next_index + $2 <= size
            ORDER BY created_at, id LIMIT 1)
RETURNING id, next_index - $2 AS first
"""
_CREATE = """
INSERT INTO status_lists (tenant_id, id, size, bits_per_entry, next_index, bits)
VALUES ($1, $2, $3, 1, 0, $4)
"""
_READ = "SELECT size, bits_per_entry, bits FROM status_lists WHERE tenant_id = $1 AND id = $2"


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """A credential's place in its tenant's status list."""

    list_id: uuid.UUID
    index: int


def list_uri(public_url: str, tenant_id: uuid.UUID, list_id: uuid.UUID) -> str:
    """Where the list token is served (the ``status.status_list.uri`` of credentials)."""
    return f"{public_url}/tenants/{tenant_id}/statuslists/{list_id}"


async def reserve_range(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, count: int, list_size: int
) -> tuple[uuid.UUID, int]:
    """Reserve ``count`` consecutive indexes in an open list; returns (list id, first index).

    Must run inside a tenant transaction for ``tenant_id``.
    """
    if not 0 < count <= list_size:
        raise ValueError(f"count must be in 1..{list_size}, got {count}")
    while True:
        row = await conn.fetchrow(_RESERVE, tenant_id, count)
        if row is not None:
            return row["id"], row["first"]
        # No room anywhere: open a new list. A concurrent opener only means two open lists.
        await conn.execute(_CREATE, tenant_id, uuid.uuid4(), list_size, bytes(list_size // 8))


class ListPublisher(Protocol):
    """Signs and stores a list's token (``status_tokens.StatusTokenSigner``)."""

    async def publish_if_due(self, tenant_id: uuid.UUID, list_id: uuid.UUID) -> bool: ...


class StatusAllocator:
    """Hands out status list indexes from blocks reserved per tenant per process.

    With a ``publisher``, a list whose token is not signed yet (a new list) is signed before
    any of its indexes is handed out, so the ``status.status_list.uri`` of every credential
    resolves by the time the credential exists.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        block: int = 512,
        list_size: int = DEFAULT_LIST_SIZE,
        publisher: ListPublisher | None = None,
    ):
        if list_size % 8 or block > list_size:
            raise ValueError("list_size must be a multiple of 8 and at least the block size")
        self._pool = pool
        self._publisher = publisher
        self._block = block
        self._list_size = list_size
        self._free: dict[uuid.UUID, list[StatusEntry]] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def take(self, tenant_id: uuid.UUID, count: int) -> list[StatusEntry]:
        """``count`` never-used entries of the tenant's status lists."""
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            free = self._free.setdefault(tenant_id, [])
            while len(free) < count:
                size = max(self._block, count - len(free))
                size = min(size, self._list_size)
                async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
                    list_id, first = await reserve_range(conn, tenant_id, size, self._list_size)
                if self._publisher is not None:
                    await self._publisher.publish_if_due(tenant_id, list_id)
                free.extend(StatusEntry(list_id, i) for i in range(first, first + size))
            taken, self._free[tenant_id] = free[:count], free[count:]
            return taken


def get_status(bits: bytes, index: int, bits_per_entry: int = 1) -> int:
    """The status value of entry ``index`` (least significant bits first, as in the draft)."""
    position = index * bits_per_entry
    byte, shift = divmod(position, 8)
    return (bits[byte] >> shift) & ((1 << bits_per_entry) - 1)


def status_list_token(
    *,
    key: SigningKey,
    uri: str,
    bits: bytes,
    bits_per_entry: int,
    ttl_seconds: int = 300,
    now: float | None = None,
) -> str:
    """The signed ``statuslist+jwt`` whose ``lst`` is the zlib-compressed bit string.

    ``ttl`` tells verifiers how long they may cache it; ``exp`` is twice that, so a token
    re-signed once half its life is gone always outlives a verifier's cached copy.
    """
    iat = int(now if now is not None else time.time())
    payload: dict[str, Any] = {
        "sub": uri,
        "iat": iat,
        "exp": iat + 2 * ttl_seconds,
        "ttl": ttl_seconds,
        "status_list": {
            "bits": bits_per_entry,
            "lst": b64url(zlib.compress(bits, 9)),
        },
    }
    header = {"alg": "ES256", "typ": TYP, "kid": key.kid}
    return sign_compact(header, payload, key.private_key)


async def read_list(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, list_id: uuid.UUID
) -> tuple[bytes, int] | None:
    """(bits, bits_per_entry) of a list, or None when the tenant has no such list."""
    row = await conn.fetchrow(_READ, tenant_id, list_id)
    if row is None:
        return None
    return bytes(row["bits"]), int(row["bits_per_entry"])
