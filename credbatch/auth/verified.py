"""Caller tokens already verified, kept until they expire.

A client sends the same token with every call until it expires; verifying it again each time
(its segments parsed twice, the signature checked, the claims read) was a fifth of a one-row
upload's handling. What a kept entry may stand in for, and what it may not:

* the token itself: its signature, issuer, audience, lifetime and claims are facts of its
  bytes, which cannot change. An entry is found by the SHA-256 of the whole token (so no
  bearer token is kept in memory), and the caller it gives is the one verified then.
* time: an entry is used only while the token's ``exp`` is still ahead, without the leeway
  verification allows; a token past it is verified again (and refused once past the leeway).
* keys: the verifier still asks its key source for the token's key on every call, so a key
  source that cannot be read past its stale window, or that no longer has the token's key,
  refuses the token as before; an entry is used only when the source hands out the very key
  object the token was verified with. A JWKS refresh builds new key objects, so after each
  one (or a rotation that swaps a key under the same ``kid``) every token is verified again.
* revocation: credbatch keeps no list of revoked tokens (a token is valid until ``exp``), so
  there is nothing more to check.

The number of entries is bounded; past it the oldest is dropped (and verified again when it
comes back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from credbatch.tenancy import TenantScope

CAPACITY = 10_000
"""Tokens kept at most: a few hundred bytes each, far more than the callers one process sees
within a token's lifetime."""


@dataclass(frozen=True)
class VerifiedToken:
    """A token verified with ``key``: its caller, until ``expires`` (its ``exp``, epoch s)."""

    caller: TenantScope
    expires: float
    kid: str
    key: object


def token_digest(token: str) -> bytes:
    """The key of ``token``'s entry."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class VerifiedTokens:
    """Entries by token digest, at most ``capacity``, each until its token expires."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._entries: dict[bytes, VerifiedToken] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> VerifiedToken | None:
        """The entry of the token with ``digest``, unless it is absent or expired at ``now``."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.expires:
            del self._entries[digest]
            return None
        return entry

    def put(self, digest: bytes, entry: VerifiedToken, now: float) -> None:
        """Keep ``entry`` (not when already expired at ``now``), dropping the oldest if full."""
        if now >= entry.expires:
            return
        self._entries.pop(digest, None)
        while len(self._entries) >= self._capacity:
            # Insertion order: the oldest entry, usually also the first to expire.
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = entry

    def forget(self, digest: bytes) -> None:
        """Drop the entry of the token with ``digest``, if any."""
        self._entries.pop(digest, None)
