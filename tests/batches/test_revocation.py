"""Setting one status list entry leaves every other entry as it was, whatever its width."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch.batches.revocation import set_status
from credbatch.signing.status_list import get_status


@given(
    width=st.sampled_from((1, 2, 4, 8)),
    data=st.data(),
)
def test_set_status_changes_only_its_entry(width: int, data: st.DataObject) -> None:
    entries = 64
    bits = bytearray(
        data.draw(st.binary(min_size=entries * width // 8, max_size=entries * width // 8))
    )
    index = data.draw(st.integers(0, entries - 1))
    value = data.draw(st.integers(0, (1 << width) - 1))
    before = [get_status(bytes(bits), i, width) for i in range(entries)]
    set_status(bits, index, value, width)
    after = [get_status(bytes(bits), i, width) for i in range(entries)]
    assert after[index] == value
    assert after[:index] + after[index + 1 :] == before[:index] + before[index + 1 :]


def test_entry_order_is_least_significant_bit_first() -> None:
    bits = bytearray(2)
    set_status(bits, 9, 1)
    assert bits == bytearray([0, 0b10])


def test_a_value_wider_than_the_entry_is_refused() -> None:
    with pytest.raises(ValueError):
        set_status(bytearray(1), 0, 2, 1)
