"""Duplicate recipients: each later occurrence with its first row, in row order, whatever the
sort runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.uploads import recipients
from services.uploads.recipients import RecipientIndex


def _expected(keys: list[str]) -> list[tuple[int, int]]:
    first: dict[str, int] = {}
    found = []
    for row, key in enumerate(keys, start=2):
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
