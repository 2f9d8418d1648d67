from __future__ import annotations

import uuid

from credbatch.schema.columns import expected_columns, match_header
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion

SCHEMA = SchemaVersion(
    uuid.uuid4(),
    1,
    "Diploma",
    (
        Attribute("given_name", AttributeType.STRING, required=True),
        Attribute("grade", AttributeType.ENUM, enum_values=("A", "B")),
    ),
)


def test_recipient_columns_follow_the_mediums_then_attributes_in_order() -> None:
    assert [c.name for c in expected_columns(SCHEMA, [Medium.EMAIL])] == [
        "email",
        "given_name",
        "grade",
    ]
    assert [c.name for c in expected_columns(SCHEMA, [Medium.SMS])] == [
        "phone",
        "given_name",
        "grade",
    ]
    assert [c.name for c in expected_columns(SCHEMA, [Medium.SMS, Medium.EMAIL])] == [
        "email",
        "phone",
        "given_name",
        "grade",
    ]
    columns = expected_columns(SCHEMA, [Medium.EMAIL])
    assert [c.required for c in columns] == [True, True, False]


def test_header_matching_ignores_case_and_spaces_and_maps_positions() -> None:
    match = match_header([" Grade ", "EMAIL", "given_NAME"], SCHEMA, [Medium.EMAIL])
    assert match.ok
    assert match.positions == (1, 2, 0)


def test_each_missing_unknown_and_duplicate_column_is_reported() -> None:
    match = match_header(
        ["email", "Email", "nickname", "", "Cred_URL", "grade"], SCHEMA, [Medium.EMAIL]
    )
    assert not match.ok
    found = {(p.code, p.column, p.column_index) for p in match.problems}
    assert found == {
        ("DUPLICATE_COLUMN", "Email", 1),
        ("UNKNOWN_COLUMN", "nickname", 2),
        ("UNKNOWN_COLUMN", "", 3),
        ("UNKNOWN_COLUMN", "Cred_URL", 4),
        ("MISSING_COLUMN", "given_name", None),
    }
    assert match.positions == (0, -1, 5)
