"""Whether a key-encryption key looks drawn from a random source (a production start check).

Kept apart from ``credbatch.signing.kek``: configuration checks it in every process, and the
public component must never load key handling.
"""

from __future__ import annotations

MIN_DISTINCT_BYTES = 16
"""Fewest distinct byte values a production KEK may have.

32 random bytes hold about 30 distinct values; fewer than 16 happens by chance with odds
below 1e-20, but it is what a repeated pattern, an all-zero key or 32 hex digits look like.
"""


class WeakKekError(ValueError):
    """The KEK does not look like random bytes (see ``check_kek_strength``)."""


def check_kek_strength(kek: bytes) -> None:
    """Refuse a KEK that was typed or patterned rather than drawn from a random source.

    Rules: fewer than ``MIN_DISTINCT_BYTES`` distinct byte values (all-zero, repeated bytes
    or patterns, hex digits), or only printable ASCII (a pass phrase: 32 random bytes are all
    printable with odds of about 1e-14). Neither rule ever refuses ``os.urandom(32)`` in
    practice.

    Raises:
        WeakKekError: naming the rule (never the key).
    """
    distinct = len(set(kek))
    if distinct < MIN_DISTINCT_BYTES:
        raise WeakKekError(
            f"the KEK has only {distinct} distinct byte values (at least "
            f"{MIN_DISTINCT_BYTES}); generate it with `head -c 32 /dev/urandom | base64`"
        )
    if all(0x20 <= b < 0x7F for b in kek):
        raise WeakKekError(
            "the KEK is printable text, not random bytes; generate it with "
            "`head -c 32 /dev/urandom | base64`"
        )
