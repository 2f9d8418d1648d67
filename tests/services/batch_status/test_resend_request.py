"""ResendInvitations input rules: every broken rule named by field, repeated ids resent once."""

from __future__ import annotations

import uuid

import pytest

from credbatch.batches.resend import UnknownRecords
from credbatch.errors import InvalidArgument
from services.batch_status.resend import (
    MAX_IDS,
    NAMED_IN_ERROR,
    records_not_found,
    resend_request,
)

BATCH = uuid.uuid4()


def test_a_valid_request_keeps_the_ids_once_in_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    parsed = resend_request(BATCH, [str(a), str(b), str(a).upper()], "key")
    assert parsed.ids == (a, b)
    assert parsed.request_id == "key"


def test_no_ids_means_the_whole_batch() -> None:
    assert resend_request(BATCH, [], "").ids is None


@pytest.mark.parametrize(
    ("ids", "request_id", "fields"),
    [
        (["nope", str(uuid.uuid4()), ""], "", ["record_ids[0]", "record_ids[2]"]),
        ([str(uuid.uuid4())] * (MAX_IDS + 1), "", ["record_ids"]),
        ([], "k" * 201, ["request_id"]),
    ],
)
def test_broken_rules_are_named(ids: list[str], request_id: str, fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resend_request(BATCH, ids, request_id)
    assert [v.field for v in caught.value.violations] == fields


def test_unknown_records_are_named_up_to_a_bound() -> None:
    unknown = tuple(uuid.uuid4() for _ in range(NAMED_IN_ERROR + 5))
    error = records_not_found(BATCH, UnknownRecords(unknown))
    assert error.reason == "RECORD_NOT_FOUND"
    assert str(unknown[0]) in str(error) and "and 5 more" in str(error)
    assert str(unknown[-1]) not in str(error)
