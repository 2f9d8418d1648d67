"""Duplicate recipients within one file, in memory that stays the same for any row count.

A set or dict of a million addresses costs over 100 MB in Python objects; here each
recipient costs 8 bytes: its 64-bit hash in an ``array``, in the order added, and not even
those stay in memory: past ``BUFFERED`` hashes they go to a temporary file, so the process's
peak does not grow with the file's rows (a million rows' two columns would hold 16 MB for the
whole upload). A hash's row is not stored: rows come in increasing order and
mostly one after the other, so the index keeps only where that run of rows breaks (a row
without a recipient, an invalid one), and the row of a hash is found from its position. The
duplicates are found once at the end: a Python int per hash (in a list or set) is five times
the array's size, so the hashes are read back and sorted in runs of ``SORT_RUN``, one run's
list at a time, and each sorted run, cut where the 64-bit hash space is cut into as many
equal ranges as there are runs, spills to a second temporary file. Equal hashes fall in the
same range; a range gathers about one run's worth from all the runs, and a set of it (built
in C, as the sorts are) shows whether it holds a repeat. Two different addresses share a
64-bit hash with a probability of about n^2 / 2^65 (5e-8 for a million rows), an accepted
risk: the worst case is a false duplicate report, never a silent duplicate.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

SORT_RUN = 1 << 17
"""Hashes sorted, or gathered in one set, at a time: about 9 MB of Python ints at most."""
BUFFERED = 1 << 15
"""Hashes an index holds in memory (256 KiB) before it writes them to its temporary file."""
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

    Rows must be added in increasing order (a file's rows are). ``close()`` (or the index's
    collection) deletes its temporary file.
    """

    def __init__(self) -> None:
        self._hashes = array("q")  # the last ones added, not yet in the file
        self._file: IO[bytes] | None = None  # the ones before, in the order added
        self._written = 0
        self._breaks = RowBreaks()
        self._close_file: weakref.finalize[[], RecipientIndex] | None = None

    def __len__(self) -> int:
        return self._written + len(self._hashes)

    def add(self, key: str, row: int) -> None:
        self._breaks.add(len(self), row, 1)
        self._hashes.append(hash(key))
        self._write_full()

    def add_many(self, keys: list[str], first_row: int) -> None:
        """Add ``keys`` as the recipients of the consecutive rows from ``first_row``."""
        if keys:
            self._breaks.add(len(self), first_row, len(keys))
            self._hashes.extend(map(hash, keys))
            self._write_full()

    def add_run(self, run: RecipientRun) -> None:
        """Add a block's recipients, whose rows all follow the rows added so far."""
        if not run.keys:
            return
        if run.breaks.rows[0] <= self._breaks.last_row:
            raise ValueError("rows must be added in increasing order")
        start = len(self)
        self._hashes.extend(map(hash, run.keys))
        # The run's first row is always a break of its own; harmless when it continues the
        # previous run, and it saves comparing.
        self._breaks.positions.extend(position + start for position in run.breaks.positions)
        self._breaks.rows.extend(run.breaks.rows)
        self._breaks.last_row = run.breaks.last_row
        self._write_full()

    def close(self) -> None:
        """Delete the temporary file (the index is empty after)."""
        if self._close_file is not None:
            self._close_file()
            self._close_file = None
        self._file = None
        self._hashes = array("q")
        self._written = 0

    def duplicates(self) -> Iterator[Duplicate]:
        """Each later occurrence of a key, with the row of its first occurrence, by row."""
        repeated = self._repeated()
        if not repeated:
            return
        first: dict[int, int] = {}
        position = 0
        for run in self._runs():
            for value in run:
                if value in repeated:
                    row = self._breaks.row_at(position)
                    seen = first.setdefault(value, row)
                    if seen != row:
                        yield Duplicate(row, seen)
                position += 1

    def _write_full(self) -> None:
        if len(self._hashes) < BUFFERED:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            # A validator dropped on an error path still deletes its file, and with no
            # ResourceWarning: the file is closed before it is collected.
            self._close_file = weakref.finalize(self, self._file.close)
        self._file.seek(0, os.SEEK_END)
        self._hashes.tofile(self._file)
        self._written += len(self._hashes)
        self._hashes = array("q")

    def _runs(self) -> Iterator[array[int]]:
        """Every hash in the order added, ``SORT_RUN`` at a time."""
        if self._file is not None:
            self._file.seek(0)
            for start in range(0, self._written, SORT_RUN):
                # Not kept in a local here, so the caller's ``del`` frees it.
                yield _read(self._file, min(SORT_RUN, self._written - start))
        for start in range(0, len(self._hashes), SORT_RUN):
            yield self._hashes[start : start + SORT_RUN]

    def _repeated(self) -> set[int]:
        """The hashes that occur more than once."""
        count = len(self)
        if count <= SORT_RUN:
            # One set of them all, as one range would be, with no sort.
            if self._file is None:
                return _repeats(self._hashes)
            hashes = array("q")
            for run in self._runs():
                hashes.extend(run)
            return _repeats(hashes)
        ranges = -(-count // SORT_RUN)
        bounds = [_HASH_MIN + (k << 64) // ranges for k in range(ranges + 1)]
        repeated: set[int] = set()
        with tempfile.TemporaryFile() as spill:
            # Each sorted run's offset in the spill and where it crosses the bounds. One run's
            # ints at a time: each list is dropped before the next is made.
            runs: list[tuple[int, array[int]]] = []
            offset = 0
            for unsorted in self._runs():
                ordered = sorted(unsorted)
                del unsorted
                cuts = array("q", (bisect_left(ordered, bound) for bound in bounds))
                runs.append((offset, cuts))
                offset += len(ordered) * _ITEM_BYTES
                array("q", ordered).tofile(spill)
                del ordered
            for k in range(ranges):
                gathered = array("q")
                for start, cuts in runs:
                    if cuts[k + 1] > cuts[k]:
                        spill.seek(start + cuts[k] * _ITEM_BYTES)
                        gathered.fromfile(spill, cuts[k + 1] - cuts[k])
                repeated |= _repeats(gathered)
        return repeated


def _read(file: IO[bytes], count: int) -> array[int]:
    hashes = array("q")
    hashes.fromfile(file, count)
    return hashes


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
