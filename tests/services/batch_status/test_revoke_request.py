"""RevokeRecords input rules: every broken rule named by field, repeated ids revoked once."""

from __future__ import annotations

import uuid

import pytest

from credbatch.batches.revocation import Unrevocable
from credbatch.errors import InvalidArgument
from services.batch_status.revoke import MAX_IDS, NAMED_IN_ERROR, refused, revoke_request

BATCH = uuid.uuid4()


def test_a_valid_request_keeps_the_ids_once_in_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    parsed = revoke_request(BATCH, [str(a), str(b), str(a).upper()], "  wrong grade ")
    assert parsed.ids == (a, b)
    assert parsed.reason == "wrong grade"


@pytest.mark.parametrize(
    ("ids", "reason", "fields"),
    [
        ([], "", ["reason"]),
        ([], "x" * 501, ["reason"]),
        (["nope", str(uuid.uuid4()), ""], "ok", ["record_ids[0]", "record_ids[2]"]),
        ([str(uuid.uuid4())] * (MAX_IDS + 1), "ok", ["record_ids"]),
    ],
)
def test_broken_rules_are_named(ids: list[str], reason: str, fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        revoke_request(BATCH, ids, reason)
    assert [v.field for v in caught.value.violations] == fields


def test_a_refusal_names_a_bounded_number_of_ids() -> None:
    unknown = tuple(uuid.uuid4() for _ in range(NAMED_IN_ERROR + 5))
    error = refused(Unrevocable(unknown=unknown, not_issued=()))
    assert len(error.violations) == NAMED_IN_ERROR
    assert str(unknown[0]) in str(error) and "and 5 more" in str(error)
