"""Resource names: formatting, parsing, and errors that name the request field."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch import names
from credbatch.errors import InvalidArgument

ID = uuid.UUID("0b4f3c5e-8d1a-4f7e-9c2b-6a5d4e3f2a1b")


def _refusal(call: object) -> InvalidArgument:
    assert callable(call)
    with pytest.raises(InvalidArgument) as caught:
        call()
    return caught.value


@given(st.uuids(), st.sampled_from([*names.TEMPLATE_COLLECTIONS, names.BATCHES]))
def test_a_formatted_name_parses_back(resource_id: uuid.UUID, collection: str) -> None:
    name = names.format_name(collection, resource_id)
    assert names.parse_name(name, collection, "name") == resource_id


@given(st.uuids(), st.none() | st.integers(min_value=1, max_value=999_999_999))
def test_a_schema_name_parses_back(schema_id: uuid.UUID, version: int | None) -> None:
    name = names.schema_name(schema_id, version)
    assert names.parse_schema_name(name, "schema") == (schema_id, version)


def test_formats() -> None:
    assert names.schema_name(ID) == f"schemas/{ID}"
    assert names.schema_name(ID, 3) == f"schemas/{ID}@3"
    assert names.format_name(names.BATCHES, ID) == f"batches/{ID}"
    assert names.optional_name(names.SMS_TEMPLATES, None) == ""
    assert names.optional_name(names.SMS_TEMPLATES, ID) == f"smsTemplates/{ID}"


def test_template_names_say_their_collection() -> None:
    for collection in names.TEMPLATE_COLLECTIONS:
        assert names.parse_template_name(f"{collection}/{ID}", "template") == (collection, ID)
    assert names.parse_template_name(
        f"smsTemplates/{ID}", "t", (names.SMS_TEMPLATES, names.EMAIL_TEMPLATES)
    ) == (names.SMS_TEMPLATES, ID)


def test_uppercase_hex_is_the_same_id() -> None:
    assert names.parse_name(f"batches/{str(ID).upper()}", names.BATCHES, "name") == ID


@pytest.mark.parametrize(
    "name",
    [
        "batches",
        "batches/",
        f"schemas/{ID}",
        f"batches/{ID}/records",
        f"batches/{ID}@1",
        "batches/not-a-uuid",
        f"batches/{ID.hex}",  # no hyphens: not the canonical form
        f"batches/{{{ID}}}",
        f"Batches/{ID}",
        f"/batches/{ID}",
    ],
)
def test_a_bad_name_is_invalid_and_names_the_field(name: str) -> None:
    error = _refusal(lambda: names.parse_name(name, names.BATCHES, "header.batch"))
    assert [v.field for v in error.violations] == ["header.batch"]
    assert error.violations[0].reason == "INVALID_NAME" and error.reason == "INVALID_NAME"
    assert "`batches/{uuid}`" in error.violations[0].description


def test_an_empty_name_is_required() -> None:
    error = _refusal(lambda: names.parse_schema_name("", "header.schema"))
    assert [(v.field, v.reason) for v in error.violations] == [("header.schema", "REQUIRED")]


@pytest.mark.parametrize("version", ["0", "01", "-1", "", "x", "1000000000", "1@2"])
def test_a_bad_version_is_invalid(version: str) -> None:
    error = _refusal(lambda: names.parse_schema_name(f"schemas/{ID}@{version}", "schema"))
    assert error.violations[0].field == "schema"
    assert "version 1 or more" in error.violations[0].description


def test_an_unversioned_schema_name_refuses_a_version() -> None:
    assert names.parse_schema_name(f"schemas/{ID}", "name", versioned=False) == (ID, None)
    error = _refusal(lambda: names.parse_schema_name(f"schemas/{ID}@2", "name", versioned=False))
    assert "@" not in error.violations[0].description.split(", got")[0]


def test_a_template_of_another_collection_is_invalid() -> None:
    error = _refusal(
        lambda: names.parse_template_name(f"smsTemplates/{ID}", "name", (names.EMAIL_TEMPLATES,))
    )
    assert error.violations[0].field == "name"
    assert "`emailTemplates/{uuid}`" in error.violations[0].description


def test_a_long_bad_name_is_not_echoed_whole() -> None:
    error = _refusal(lambda: names.parse_name("x" * 10_000, names.BATCHES, "name"))
    assert len(error.violations[0].description) < 200


def test_qualify_prefixes_a_bare_id_only() -> None:
    assert names.qualify(names.SCHEMAS, f" {ID}@2 ") == f"schemas/{ID}@2"
    assert names.qualify(names.BATCHES, f"batches/{ID}") == f"batches/{ID}"


def test_a_record_name_gives_its_batch_and_record() -> None:
    record = uuid.uuid4()
    assert names.parse_record_name(f"batches/{ID}/records/{record}", "name") == (ID, record)
    for bad in (f"batches/{ID}", f"batches/{ID}/records/x", f"schemas/{ID}/records/{record}"):
        error = _refusal(lambda bad=bad: names.parse_record_name(bad, "name"))
        assert error.violations[0].field == "name"
        assert "`batches/{uuid}/records/{uuid}`" in error.violations[0].description
