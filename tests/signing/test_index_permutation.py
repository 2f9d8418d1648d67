"""Status list indexes: a keyed bijection of positions, not the order of issuance."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

from credbatch.signing.index_permutation import permute
from credbatch.signing.status_list import StatusAllocator


@pytest.mark.parametrize("size", [1, 2, 3, 8, 64, 100, 1000])
def test_every_size_is_permuted_onto_itself(size: int) -> None:
    key = os.urandom(32)
    assert sorted(permute(p, size, key) for p in range(size)) == list(range(size))


def test_the_key_decides_the_order() -> None:
    first = [permute(p, 1 << 10, b"a" * 32) for p in range(32)]
    second = [permute(p, 1 << 10, b"b" * 32) for p in range(32)]
    assert first != second
    assert first != list(range(32))


def test_positions_outside_the_list_are_refused() -> None:
    with pytest.raises(ValueError):
        permute(64, 64, b"k" * 32)


async def test_consecutive_credentials_do_not_get_consecutive_indexes(
    app_pool: asyncpg.Pool,
) -> None:
    allocator = StatusAllocator(app_pool, block=64, list_size=1 << 12)
    entries = await allocator.take(uuid.uuid4(), 64)
    indexes = [e.index for e in entries]
    assert len(set(indexes)) == 64 and all(0 <= i < 1 << 12 for i in indexes)
    # In order, 64 positions would sit in 0..63; permuted, they spread over the list.
    assert indexes != sorted(indexes)
    assert max(indexes) > 1000


def test_the_permutation_of_existing_lists_never_changes() -> None:
    # Lists issued from keep reserving positions: a different mapping for the same key would
    # hand out indexes already given to other credentials. These values are what every list
    # so far was issued with.
    key = bytes(range(32))
    assert [permute(p, 131072, key) for p in (0, 1, 2, 3, 1000, 131071)] == [
        70419,
        17721,
        10725,
        119960,
        34318,
        33316,
    ]
    assert [permute(p, 100, b"k" * 32) for p in range(10)] == [97, 87, 6, 65, 50, 5, 95, 84, 15, 54]
