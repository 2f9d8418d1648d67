"""UpdateRecordContact's input rules: the update mask, and the upload's own recipient rules."""

from __future__ import annotations

import uuid

import pytest

from credbatch.errors import InvalidArgument
from credbatch.schema.model import Medium
from services.batch_status.contact import contact_request, validated_change

BATCH, RECORD = uuid.uuid4(), uuid.uuid4()
BOTH = {Medium.EMAIL, Medium.SMS}


def violations(error: pytest.ExceptionInfo[InvalidArgument]) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in error.value.violations]


def test_the_mask_must_name_email_or_phone() -> None:
    with pytest.raises(InvalidArgument) as empty:
        contact_request(BATCH, RECORD, [], "a@example.org", "")
    assert violations(empty) == [("update_mask", "REQUIRED")]
    with pytest.raises(InvalidArgument) as unknown:
        contact_request(BATCH, RECORD, ["email", "attributes.name"], "a@example.org", "")
    assert violations(unknown) == [("update_mask.paths[1]", "INVALID_UPDATE_MASK")]


def test_values_are_normalised_as_an_upload_normalises_them() -> None:
    request = contact_request(
        BATCH, RECORD, ["email", "phone"], "Ada@Example.ORG", "(415) 555-0132"
    )
    change = validated_change(request, BOTH, "US")
    assert (change.email, change.phone) == ("Ada@example.org", "+14155550132")


def test_a_field_outside_the_mask_is_left_alone() -> None:
    request = contact_request(BATCH, RECORD, ["phone"], "not an address", "+442071838750")
    change = validated_change(request, BOTH, "US")
    assert (change.email, change.phone) == (None, "+442071838750")


def test_each_bad_value_is_named_with_the_upload_code() -> None:
    request = contact_request(BATCH, RECORD, ["email", "phone"], "ada@", "12")
    with pytest.raises(InvalidArgument) as bad:
        validated_change(request, BOTH, "US")
    assert violations(bad) == [("email", "INVALID_EMAIL"), ("phone", "INVALID_PHONE")]
    # The message names the field, never the value it refused.
    assert "ada@" not in str(bad.value.message)


def test_an_empty_value_for_a_medium_of_the_batch_is_refused() -> None:
    request = contact_request(BATCH, RECORD, ["email"], "", "")
    with pytest.raises(InvalidArgument) as bad:
        validated_change(request, BOTH, "US")
    assert violations(bad) == [("email", "REQUIRED_VALUE_MISSING")]


def test_a_contact_the_batch_does_not_invite_by_is_refused() -> None:
    request = contact_request(BATCH, RECORD, ["phone"], "", "+14155550132")
    with pytest.raises(InvalidArgument) as bad:
        validated_change(request, {Medium.EMAIL}, "US")
    assert violations(bad) == [("phone", "MEDIUM_NOT_USED")]
