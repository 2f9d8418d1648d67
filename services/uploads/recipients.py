"""Duplicate recipients within one file, in memory that stays small for a million rows.

A set or dict of a million addresses costs over 100 MB in Python objects; here each
recipient costs 8 bytes: its 64-bit hash in an ``array``, in the order added. Its row is not
stored: rows come in increasing order and mostly one after the other, so the index keeps only
where that run of rows breaks (a row without a recipient, an invalid one), and the row of a
hash is found from its position. The duplicates are found once at the end: a Python int per
hash (in a list or set) is five times the array's size, so the hashes are sorted in runs of
``SORT_RUN``, one run's list at a time, and each sorted run, cut where the 64-bit hash space is
cut into as many equal ranges as there are runs, spills to a temporary file instead of holding
a second copy of every hash. Equal hashes fall in the same range; a range gathers about one
run's worth from all the runs, and a set of it (built in C, as the sorts are) shows whether it
holds a repeat. Two different addresses share a 64-bit hash with a probability of about
n^2 / 2^65 (5e-8 for a million rows), an accepted risk: the worst case is a false duplicate
report, never a silent duplicate.
"""

from __future__ import annotations

import tempfile
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

SORT_RUN = 1 << 17
"""Hashes sorted, or gathered in one set, at a time: about 9 MB of Python ints at most."""
_ITEM_BYTES = array("q").itemsize
_HASH_MIN = -(1 << 63)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row whose recipient already appears in an earlier row."""

    row: int
    first_row: int


class RowBreaks:
    """Where consecutive rows restart in a list of per-row entries (a recipient's key or hash
    each): the entry's position and the row added there, so any entry's row follows from its
    position. Rows must be added in increasing order (a file's rows are)."""

    def __init__(self) -> None:
        self.positions = array("i")
        self.rows = array("i")
        self.last_row = -1

    def add(self, position: int, first_row: int, count: int) -> None:
        """Note ``count`` entries from ``position`` on, for the rows from ``first_row`` on."""
        if first_row != self.last_row + 1:
            if first_row <= self.last_row:
                raise ValueError("rows must be added in increasing order")
            self.positions.append(position)
            self.rows.append(first_row)
        self.last_row = first_row + count - 1

    def row_at(self, position: int) -> int:
        at = bisect_right(self.positions, position) - 1
        return self.rows[at] + position - self.positions[at]


class RecipientRun:
    """One block's recipients, kept as their keys for the file's ``RecipientIndex``.

    A block validated in another process cannot send hashes: ``hash()`` of a string differs
    between processes. The keys themselves are hashed where the file's index lives.
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.breaks = RowBreaks()

    def add(self, key: str, row: int) -> None:
        self.breaks.add(len(self.keys), row, 1)
        self.keys.append(key)

    def add_many(self, keys: list[str], first_row: int) -> None:
        """Add ``keys`` as the recipients of the consecutive rows from ``first_row``."""
        if keys:
            self.breaks.add(len(self.keys), first_row, len(keys))
            self.keys.extend(keys)


class RecipientIndex:
    """Collects (recipient key, row) pairs of one column and finds the repeated keys.

    Rows must be added in increasing order (a file's rows are).
    """

    def __init__(self) -> None:
        self._hashes = array("q")
        self._breaks = RowBreaks()

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, key: str, row: int) -> None:
        self._breaks.add(len(self._hashes), row, 1)
        self._hashes.append(hash(key))

    def add_many(self, keys: list[str], first_row: int) -> None:
        """Add ``keys`` as the recipients of the consecutive rows from ``first_row``."""
        if keys:
            self._breaks.add(len(self._hashes), first_row, len(keys))
            self._hashes.extend(map(hash, keys))

    def add_run(self, run: RecipientRun) -> None:
        """Add a block's recipients, whose rows all follow the rows added so far."""
        if not run.keys:
            return
        if run.breaks.rows[0] <= self._breaks.last_row:
            raise ValueError("rows must be added in increasing order")
        start = len(self._hashes)
        self._hashes.extend(map(hash, run.keys))
        # The run's first row is always a break of its own; harmless when it continues the
        # previous run, and it saves comparing.
        self._breaks.positions.extend(position + start for position in run.breaks.positions)
        self._breaks.rows.extend(run.breaks.rows)
        self._breaks.last_row = run.breaks.last_row

    def duplicates(self) -> Iterator[Duplicate]:
        """Each later occurrence of a key, with the row of its first occurrence, by row."""
        repeated = self._repeated()
        if not repeated:
            return
        first: dict[int, int] = {}
        for position, value in enumerate(self._hashes):
            if value in repeated:
                row = self._breaks.row_at(position)
                seen = first.setdefault(value, row)
                if seen != row:
                    yield Duplicate(row, seen)

    def _repeated(self) -> set[int]:
        """The hashes that occur more than once."""
        count = len(self._hashes)
        if count <= SORT_RUN:
            return _repeats(self._hashes)
        ranges = -(-count // SORT_RUN)
        bounds = [_HASH_MIN + (k << 64) // ranges for k in range(ranges + 1)]
        repeated: set[int] = set()
        with tempfile.TemporaryFile() as spill:
            # Each run's offset in the file and where its sorted hashes cross the bounds.
            runs: list[tuple[int, array[int]]] = []
            for start in range(0, count, SORT_RUN):
                run = sorted(self._hashes[start : start + SORT_RUN])
                cuts = array("q", (bisect_left(run, bound) for bound in bounds))
                runs.append((start * _ITEM_BYTES, cuts))
                array("q", run).tofile(spill)
            for k in range(ranges):
                gathered = array("q")
                for offset, cuts in runs:
                    if cuts[k + 1] > cuts[k]:
                        spill.seek(offset + cuts[k] * _ITEM_BYTES)
                        gathered.fromfile(spill, cuts[k + 1] - cuts[k])
                repeated |= _repeats(gathered)
        return repeated


def _repeats(hashes: array[int]) -> set[int]:
    if len(set(hashes)) == len(hashes):
        return set()
    seen: set[int] = set()
    repeated: set[int] = set()
    for value in hashes:
        if value in seen:
            repeated.add(value)
        else:
            seen.add(value)
    return repeated
