"""Duplicate recipients: each later occurrence with its first row, in row order, whatever the
sort runs and however many hashes were written to the index's file; and the index's memory
is the same for any number of recipients."""

from __future__ import annotations

import os
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.uploads import recipients
from services.uploads.recipients import RecipientIndex, RecipientRun


def _expected(keys: list[str], rows: list[int] | None = None) -> list[tuple[int, int]]:
    first: dict[str, int] = {}
    found = []
    for row, key in zip(rows or range(2, len(keys) + 2), keys, strict=False):
        if key in first:
            found.append((row, first[key]))
        else:
            first[key] = row
    return found


@pytest.mark.parametrize("buffered", [1, 5, recipients.BUFFERED])
@pytest.mark.parametrize("run", [1, 3, 64, recipients.SORT_RUN])
@given(keys=st.lists(st.sampled_from("abcdefghij") | st.text(max_size=3), max_size=200))
def test_duplicates_are_each_later_occurrence_in_row_order(
    run: int, buffered: int, keys: list[str]
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipients, "BUFFERED", buffered)
        index = RecipientIndex()
        for row, key in enumerate(keys, start=2):
            index.add(key, row)
        patch.setattr(recipients, "SORT_RUN", run)
        assert [(d.row, d.first_row) for d in index.duplicates()] == _expected(keys)
        index.close()


@pytest.mark.parametrize("buffered", [7, recipients.BUFFERED])
@pytest.mark.parametrize("batch", [1, 4, 50])
@given(keys=st.lists(st.sampled_from("abcdefghij"), max_size=200))
def test_keys_added_in_batches_and_runs_give_the_same_duplicates(
    buffered: int, batch: int, keys: list[str]
) -> None:
    # A file validated here adds a batch's recipients at once; one validated in the pool,
    # a block's; either may cross the point where the index writes to its file.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipients, "BUFFERED", buffered)
        patch.setattr(recipients, "SORT_RUN", 16)
        many, runs = RecipientIndex(), RecipientIndex()
        for start in range(0, len(keys), batch):
            many.add_many(keys[start : start + batch], start + 2)
            run = RecipientRun()
            run.add_many(keys[start : start + batch], start + 2)
            runs.add_run(run)
        expected = _expected(keys)
        assert [(d.row, d.first_row) for d in many.duplicates()] == expected
        assert [(d.row, d.first_row) for d in runs.duplicates()] == expected
        many.close()
        runs.close()


@pytest.mark.parametrize("run", [1, 3, recipients.SORT_RUN])
@given(
    pairs=st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), st.sampled_from("abcdef")), max_size=200
    )
)
def test_rows_with_gaps_are_named_right(run: int, pairs: list[tuple[int, str]]) -> None:
    # Rows without a recipient (blank, invalid) leave gaps: only the breaks are stored.
    rows, keys, row = [], [], 1
    for gap, key in pairs:
        row += gap
        rows.append(row)
        keys.append(key)
    index = RecipientIndex()
    for row, key in zip(rows, keys, strict=True):
        index.add(key, row)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipients, "SORT_RUN", run)
        assert [(d.row, d.first_row) for d in index.duplicates()] == _expected(keys, rows)


def test_rows_out_of_order_are_refused() -> None:
    index = RecipientIndex()
    index.add("a", 5)
    with pytest.raises(ValueError, match="increasing"):
        index.add("b", 5)


def test_a_file_of_many_runs_is_merged_from_its_spill() -> None:
    # More than two runs: the sorted runs are merged back from the temporary file.
    count = recipients.SORT_RUN * 3 + 1000
    distinct = count * 3 // 4
    keys = [f"holder{i % distinct}" for i in range(count)]
    index = RecipientIndex()
    for row, key in enumerate(keys, start=2):
        index.add(key, row)
    found = [(d.row, d.first_row) for d in index.duplicates()]
    assert len(found) == count - distinct
    assert found == _expected(keys)


def _index_memory(count: int) -> tuple[int, int]:
    """Bytes an index of ``count`` distinct recipients holds once they are added, and its
    peak while it finds their duplicates (Python's allocations, traced)."""
    tracemalloc.start()
    try:
        index = RecipientIndex()
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, count, 512):
            index.add_many([f"holder{i}@example.org" for i in range(start, start + 512)], start + 2)
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        assert next(index.duplicates(), None) is None
        peak = tracemalloc.get_traced_memory()[1] - before
        index.close()
    finally:
        tracemalloc.stop()
    return held, peak


def test_memory_is_the_same_for_any_number_of_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small runs and buffer, so sixteen runs are quick; the sizes follow from the constants.
    monkeypatch.setattr(recipients, "SORT_RUN", 1 << 12)
    monkeypatch.setattr(recipients, "BUFFERED", 1 << 10)
    few_held, few_peak = _index_memory(4 << 12)
    many_held, many_peak = _index_memory(16 << 12)
    # All the hashes held would be 8 bytes a recipient: 384 KiB more for the larger count.
    buffer = 8 * ((1 << 10) + 512)
    assert few_held < buffer + (16 << 10)
    assert many_held < buffer + (16 << 10)
    # The search holds one run's ints and one range's set at a time, whatever the count.
    assert many_peak - few_peak < 64 << 10


def test_the_index_file_is_deleted_when_closed_or_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(recipients, "BUFFERED", 4)

    def index_files() -> list[str]:
        found = []
        for fd in Path("/proc/self/fd").iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:
                continue  # the listing's own descriptor, closed meanwhile
            if target.startswith(str(tmp_path)):
                found.append(target)
        return found

    closed = RecipientIndex()
    closed.add_many([f"k{i}" for i in range(10)], 2)
    assert len(index_files()) == 1
    assert list(tmp_path.iterdir()) == []  # no name, even while it is written
    closed.close()
    assert index_files() == []
    # An upload that fails before its report drops its validator: no descriptor left open,
    # and no ResourceWarning (which this suite turns into an error).
    dropped = RecipientIndex()
    dropped.add_many([f"k{i}" for i in range(10)], 2)
    assert len(index_files()) == 1
    del dropped
    assert index_files() == []
