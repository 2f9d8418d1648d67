"""Rows validated a column at a time give what one row at a time gives: the accepted rows,
their values, the problems and their order, duplicates and the row limit, whatever the file."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credbatch.errors import ResourceExhausted
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from credbatch.schema.values import RowValidator
from services.uploads import validator as validator_module
from services.uploads.validator import AcceptedRow, FileValidator, Report

SCHEMA = SchemaVersion(
    uuid.uuid4(),
    1,
    "Batches",
    (
        Attribute("name", AttributeType.STRING, required=True),
        Attribute("age", AttributeType.INTEGER),
        Attribute("born", AttributeType.DATE),
        Attribute("score", AttributeType.NUMBER),
        Attribute("member", AttributeType.BOOLEAN),
        Attribute("level", AttributeType.ENUM, enum_values=("Gold", "Silver")),
    ),
)
MEDIUMS = (Medium.EMAIL, Medium.SMS)
HEADERS = [
    "email,phone,name,age,born,score,member,level",
    "name,level,email,phone,age",  # optional columns missing, in another order
]
NOT_UTF8 = "<not UTF-8>"
"""A line that stands for the byte 0xFF: the reader stops there (after the rows before it)."""


def valid_row(header: str, i: int) -> str:
    cells = {
        "email": f"Holder{i % 7}@Example.COM",
        "phone": f"+4479500{i % 9:05d}",
        "name": f"Holder {i}",
        "age": str(20 + i % 50),
        "born": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
        "score": f"{i}.25",
        "member": "yes",
        "level": "Gold",
    }
    return ",".join(cells[name] for name in header.split(","))


_odd_cell = st.sampled_from(
    [
        "",
        " ",
        " 7 ",
        "x",
        "1e3",
        "2024-02-30",
        "+1",
        "silver",
        "a@b",
        "a@b.c",
        "N",
        "\u00e9@x.org",
        "y" * 4097,
    ]
)


@st.composite
def files(draw: st.DrawFn) -> tuple[str, list[str]]:
    header = draw(st.sampled_from(HEADERS))
    width = len(header.split(","))
    lines = draw(
        st.lists(
            st.one_of(
                st.integers(0, 10_000).map(lambda i: valid_row(header, i)),
                st.integers(0, 10_000).map(lambda i: valid_row(header, i)),
                # A valid row with one cell replaced: empty, padded or invalid.
                st.tuples(st.integers(0, 100), st.integers(0, width - 1), _odd_cell).map(
                    lambda t: _replace(valid_row(header, t[0]), t[1], t[2])
                ),
                st.lists(_odd_cell, min_size=width, max_size=width).map(",".join),
                st.sampled_from(
                    ["", ",,,,", "a,b", valid_row(header, 3) + ",", '"open', NOT_UTF8, "x" * 5000]
                ),
            ),
            max_size=60,
        )
    )
    return header, lines


def _replace(line: str, at: int, cell: str) -> str:
    cells = line.split(",")
    cells[at] = cell
    return ",".join(cells)


def outcome(
    header: str, lines: Sequence[str], sizes: Sequence[int], keep: int, max_rows: int
) -> tuple[list[AcceptedRow], Report | str, list[tuple[int, int]]]:
    """The accepted rows, with the error count at each one (what a spool would keep), and
    the report, or the exhausted limit."""
    data = ("\r\n".join([header, *lines]) + "\r\n").encode().replace(NOT_UTF8.encode(), b"\xff")
    validator = FileValidator(
        SCHEMA, MEDIUMS, default_region="GB", max_rows=max_rows, keep_errors=keep
    )
    accepted: list[AcceptedRow] = []
    errors_at: list[tuple[int, int]] = []
    at = turn = 0
    try:
        while at < len(data):
            size = sizes[turn % len(sizes)]
            for row in validator.feed(data[at : at + size]):
                accepted.append(row)
                errors_at.append((row.row, validator.error_count))
            at += size
            turn += 1
        for row in validator.finish():
            accepted.append(row)
            errors_at.append((row.row, validator.error_count))
    except ResourceExhausted as error:
        return accepted, str(error.reason), errors_at
    return accepted, validator.report(), errors_at


@pytest.mark.parametrize("batch", [1, 3, validator_module.BATCH_ROWS])
# Drawing these inputs is slow on a busy machine (the email strategy builds its domains on
# first use); the health check then fails on time, not on an input.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    file=files(),
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=3),
    keep=st.integers(1, 8),
    max_rows=st.sampled_from([5, 40, 1_000]),
)
def test_columns_find_what_rows_find(
    batch: int, file: tuple[str, list[str]], sizes: list[int], keep: int, max_rows: int
) -> None:
    header, lines = file
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validator_module, "BATCH_ROWS", batch)
        by_columns = outcome(header, lines, sizes, keep, max_rows)
        # One row at a time, each settled before the next is read: the old path.
        patch.setattr(validator_module, "BATCH_ROWS", 1)
        patch.setattr(RowValidator, "validate_columns", lambda self, rows: None)
        by_rows = outcome(header, lines, sizes, keep, max_rows)
    assert by_columns == by_rows


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=files())
def test_validate_columns_is_validate_row_by_row(file: tuple[str, list[str]]) -> None:
    header, lines = file
    validator = FileValidator(SCHEMA, MEDIUMS, default_region="GB")
    for _ in validator.feed(f"{header}\r\n".encode()):
        pass
    rules = validator._rules
    width = len(header.split(","))
    rows = [line.split(",") for line in lines if len(line.split(",")) == width]
    columns = rules.validate_columns(rows)
    results = [rules.validate(cells) for cells in rows]
    if any(result.errors for result in results):
        assert columns is None
        return
    assert columns is not None
    names = list(columns)
    assert names == [column.name for column in rules.columns]
    for at, result in enumerate(results):
        found = {name: columns[name][at] for name in names if columns[name][at] is not None}
        assert found == result.values
        assert [type(value) for value in found.values()] == [
            type(value) for value in result.values.values()
        ]


def test_a_schema_without_attributes_accepts_every_row() -> None:
    # No attribute column: the rows' values are the recipients alone.
    schema = SchemaVersion(uuid.uuid4(), 1, "Recipients", ())
    validator = FileValidator(schema, [Medium.EMAIL])
    rows = [*validator.feed(b"email\r\nA@Example.com\r\nb@example.com\r\n"), *validator.finish()]
    assert rows == [
        AcceptedRow(2, "A@example.com", None, {}),
        AcceptedRow(3, "b@example.com", None, {}),
    ]
    assert validator.report().valid
