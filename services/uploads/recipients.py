"""Duplicate recipients within one file, in memory that stays small for a million rows.

A set or dict of a million addresses costs over 100 MB in Python objects; here each
recipient costs 8 bytes: its 64-bit hash in an ``array``, in the order added. Its row is not
stored: rows come in increasing order and mostly one after the other, so the index keeps only
where that run of rows breaks (a row without a recipient, an invalid one), and the row of a
hash is found from its position. The duplicates are found once at the end by sorting the
hashes in runs of ``SORT_RUN`` and merging the runs: a sorted list holds a Python int per hash,
five times the array's size, so only one run's list exists at a time, and a file of more than
one run spills its sorted runs to a temporary file for the merge instead of holding a second
copy of every hash. Two different addresses share a 64-bit hash with a probability of about
n^2 / 2^65 (5e-8 for a million rows), an accepted risk: the worst case is a false duplicate
report, never a silent duplicate.
"""

from __future__ import annotations

import heapq
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

SORT_RUN = 1 << 14
_ITEM_BYTES = array("q").itemsize
_READ_ITEMS = 1024
"""Hashes read at a time from each spilled run during the merge (8 KiB)."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row whose recipient already appears in an earlier row."""

    row: int
    first_row: int


class RecipientRun:
    """One block's recipients, kept as their keys for the file's ``RecipientIndex``.

    A block validated in another process cannot send hashes: ``hash()`` of a string differs
    between processes. The keys themselves are hashed where the file's index lives.
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.break_positions = array("i")
        self.break_rows = array("i")
        self._last_row = -1

    def add(self, key: str, row: int) -> None:
        if row != self._last_row + 1:
            if row <= self._last_row:
                raise ValueError("rows must be added in increasing order")
            self.break_positions.append(len(self.keys))
            self.break_rows.append(row)
        self._last_row = row
        self.keys.append(key)


class RecipientIndex:
    """Collects (recipient key, row) pairs of one column and finds the repeated keys.

    Rows must be added in increasing order (a file's rows are).
    """

    def __init__(self) -> None:
        self._hashes = array("q")
        # Where consecutive rows restart: position in _hashes, and the row added there.
        self._break_positions = array("i")
        self._break_rows = array("i")
        self._last_row = -1

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, key: str, row: int) -> None:
        if row != self._last_row + 1:
            if row <= self._last_row:
                raise ValueError("rows must be added in increasing order")
            self._break_positions.append(len(self._hashes))
            self._break_rows.append(row)
        self._last_row = row
        self._hashes.append(hash(key))

    def add_run(self, run: RecipientRun) -> None:
        """Add a block's recipients, whose rows all follow the rows added so far."""
        if not run.keys:
            return
        if run.break_rows[0] <= self._last_row:
            raise ValueError("rows must be added in increasing order")
        start = len(self._hashes)
        self._hashes.extend(map(hash, run.keys))
        # The run's first row is always a break of its own; harmless when it continues the
        # previous run, and it saves comparing.
        self._break_positions.extend(position + start for position in run.break_positions)
        self._break_rows.extend(run.break_rows)
        self._last_row = run.break_rows[-1] + len(run.keys) - 1 - run.break_positions[-1]

    def _row_at(self, position: int) -> int:
        at = bisect_right(self._break_positions, position) - 1
        return self._break_rows[at] + position - self._break_positions[at]

    def duplicates(self) -> Iterator[Duplicate]:
        """Each later occurrence of a key, with the row of its first occurrence, by row."""
        repeated: set[int] = set()
        previous: int | None = None
        for value in self._sorted():
            if value == previous:
                repeated.add(value)
            previous = value
        if not repeated:
            return
        first: dict[int, int] = {}
        for position, value in enumerate(self._hashes):
            if value in repeated:
                row = self._row_at(position)
                seen = first.setdefault(value, row)
                if seen != row:
                    yield Duplicate(row, seen)

    def _sorted(self) -> Iterator[int]:
        """Every hash in ascending order."""
        count = len(self._hashes)
        if count <= SORT_RUN:
            yield from sorted(self._hashes)
            return
        with tempfile.TemporaryFile() as spill:
            runs = []
            for start in range(0, count, SORT_RUN):
                run = array("q", sorted(self._hashes[start : start + SORT_RUN]))
                run.tofile(spill)
                runs.append(_read_run(spill, start * _ITEM_BYTES, len(run)))
            yield from heapq.merge(*runs)


def _read_run(spill: BinaryIO, offset: int, length: int) -> Iterator[int]:
    # The runs share one file: each read seeks to where this run's reader left off.
    done = 0
    while done < length:
        block = array("q")
        spill.seek(offset + done * _ITEM_BYTES)
        block.fromfile(spill, min(_READ_ITEMS, length - done))
        done += len(block)
        yield from block
