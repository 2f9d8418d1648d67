"""Duplicate recipients: each later occurrence with its first row, in row order, whatever the
sort runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.uploads import recipients
from services.uploads.recipients import RecipientIndex


def _expected(keys: list[str], rows: list[int] | None = None) -> list[tuple[int, int]]:
    first: dict[str, int] = {}
    found = []
    for row, key in zip(rows or range(2, len(keys) + 2), keys, strict=False):
        if key in first:
            found.append((row, first[key]))
        else:
            first[key] = row
    return found


@pytest.mark.parametrize("run", [1, 3, 64, recipients.SORT_RUN])
@given(keys=st.lists(st.sampled_from("abcdefghij") | st.text(max_size=3), max_size=200))
def test_duplicates_are_each_later_occurrence_in_row_order(run: int, keys: list[str]) -> None:
    index = RecipientIndex()
    for row, key in enumerate(keys, start=2):
        index.add(key, row)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipients, "SORT_RUN", run)
        assert [(d.row, d.first_row) for d in index.duplicates()] == _expected(keys)


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
