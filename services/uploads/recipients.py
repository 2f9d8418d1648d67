"""Duplicate recipients within one file, in memory that stays small for a million rows.

A set or dict of a million addresses costs over 100 MB in Python objects; here each
recipient costs 12 bytes (a 64-bit hash and a 32-bit row number in two ``array`` buffers; a
file's rows are far fewer than 2**31), and the duplicates are found once at the end by
sorting the hashes in runs of ``SORT_RUN``, each kept as an array, then merging the runs: a
sorted list holds a Python int per hash, five times the array's size, so only one run's list
exists at a time. Two different addresses share a 64-bit hash with a probability of about
n^2 / 2^65 (5e-8 for a million rows), an accepted risk: the worst case is a false duplicate
report, never a silent duplicate.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

SORT_RUN = 1 << 16


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row whose recipient already appears in an earlier row."""

    row: int
    first_row: int


class RecipientIndex:
    """Collects (recipient key, row) pairs of one column and finds the repeated keys."""

    def __init__(self) -> None:
        self._hashes = array("q")
        self._rows = array("i")

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, key: str, row: int) -> None:
        self._hashes.append(hash(key))
        self._rows.append(row)

    def duplicates(self) -> Iterator[Duplicate]:
        """Each later occurrence of a key, with the row of its first occurrence, by row."""
        runs = [
            array("q", sorted(self._hashes[start : start + SORT_RUN]))
            for start in range(0, len(self._hashes), SORT_RUN)
        ]
        repeated: set[int] = set()
        previous: int | None = None
        for value in heapq.merge(*runs):
            if value == previous:
                repeated.add(value)
            previous = value
        del runs
        if not repeated:
            return
        first: dict[int, int] = {}
        for value, row in zip(self._hashes, self._rows, strict=True):
            if value in repeated:
                seen = first.setdefault(value, row)
                if seen != row:
                    yield Duplicate(row, seen)
