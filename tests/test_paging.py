"""Page sizes and page tokens: round trips, binding to list and filter, tampering."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch.errors import InvalidArgument
from credbatch.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PagePosition,
    decode_row_token,
    decode_token,
    encode_row_token,
    encode_token,
    next_page_token,
    page_size,
)

POSITION = PagePosition(datetime(2025, 3, 2, 10, 11, 12, 345678, tzinfo=UTC), uuid.uuid4())


def _refused(list_name: str, token: str, filter_text: str = "") -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode_token(list_name, token, filter_text)
    error = caught.value
    assert [(v.field, v.reason) for v in error.violations] == [("page_token", "INVALID_PAGE_TOKEN")]
    assert error.reason == "INVALID_PAGE_TOKEN"
    return error.violations[0].description


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(9000, 1, 1),
        timezones=st.just(UTC),
    ),
    st.uuids(),
    st.text(max_size=50),
)
def test_a_token_gives_back_its_exact_position(
    at: datetime, item_id: uuid.UUID, filter_text: str
) -> None:
    token = encode_token("ListThings", PagePosition(at, item_id), filter_text)
    assert decode_token("ListThings", token, filter_text) == PagePosition(at, item_id)


def test_a_token_is_opaque_url_safe_text() -> None:
    token = encode_token("ListBatches", POSITION, 'creator = "ana"')
    assert str(POSITION.id) not in token and "ana" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_an_empty_token_is_the_first_page() -> None:
    assert decode_token("ListBatches", "", "anything") is None


def test_a_token_is_bound_to_its_list() -> None:
    token = encode_token("ListEmailTemplates", POSITION)
    assert "another list" in _refused("ListSmsTemplates", token)


def test_a_token_is_bound_to_its_filter_but_not_to_blanks_around_it() -> None:
    token = encode_token("ListBatches", POSITION, 'creator = "ana"')
    assert decode_token("ListBatches", token, '  creator = "ana" ') == POSITION
    assert "another filter" in _refused("ListBatches", token, 'creator = "bob"')
    assert "another filter" in _refused("ListBatches", token, "")


@pytest.mark.parametrize("garbage", ["garbage!", "x", "====", "eyJ2IjoxfQ", "a" * 400])
def test_garbage_is_refused(garbage: str) -> None:
    assert "ListBatches" in _refused("ListBatches", garbage)


def test_an_edited_token_is_refused() -> None:
    token = encode_token("ListBatches", POSITION)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    # Move the position by one microsecond without recomputing the checksum.
    at = raw.index(b'"t":') + 4
    raw[at + 1] = ord("0") + (raw[at + 1] - ord("0") + 1) % 10
    edited = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert edited != token
    _refused("ListBatches", edited)
    _refused("ListBatches", token[:-2])


def test_page_size_defaults_caps_and_refuses_negatives() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(MAX_PAGE_SIZE + 1) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1)
    assert [v.field for v in caught.value.violations] == ["page_size"]


def test_next_page_token_only_when_one_more_was_fetched() -> None:
    positions = [
        PagePosition(POSITION.create_time - timedelta(seconds=i), uuid.uuid4()) for i in range(3)
    ]
    assert next_page_token("ListThings", positions[:2], 2) == ""
    token = next_page_token("ListThings", positions, 2)
    assert decode_token("ListThings", token) == positions[1]


def _row_refused(parent: str, token: str, filter_text: str = "") -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode_row_token("ListRecords", parent, token, filter_text)
    assert [v.field for v in caught.value.violations] == ["page_token"]
    return caught.value.violations[0].description


@given(st.integers(min_value=0, max_value=2**31 - 1), st.text(max_size=30))
def test_a_row_token_gives_back_its_row(row: int, filter_text: str) -> None:
    token = encode_row_token("ListRecords", "batches/a", row, filter_text)
    assert decode_row_token("ListRecords", "batches/a", token, filter_text) == row


def test_a_row_token_is_bound_to_its_list_parent_and_filter() -> None:
    assert decode_row_token("ListRecords", "batches/a", "") == 0
    token = encode_row_token("ListRecords", "batches/a", 7, "state = RECORD_STATE_FAILED")
    assert "another parent" in _row_refused("batches/b", token, "state = RECORD_STATE_FAILED")
    assert "another filter" in _row_refused("batches/a", token)
    # A token of a list ordered by time is no row token, and the reverse.
    time_token = encode_token("ListRecords", POSITION)
    assert "ListRecords" in _row_refused("batches/a", time_token)
    with pytest.raises(InvalidArgument):
        decode_token("ListBatches", encode_row_token("ListBatches", "", 3))
