"""A CSV problem's BadRequest field is a path a program reads: rows[N].column, and the first
problem's row, column and reason as ErrorInfo metadata."""

from __future__ import annotations

from google.rpc import error_details_pb2

from credbatch.errors import to_status
from services.uploads.report_error import field_path, invalid_file_error
from services.uploads.validator import Issue, Report


def test_cells_rows_columns_and_the_file_have_their_own_paths() -> None:
    assert field_path(Issue(12, "email", "INVALID_EMAIL", "m")) == "rows[12].email"
    assert field_path(Issue(3, "", "RAGGED_ROW", "m")) == "rows[3]"
    assert field_path(Issue(0, "", "EMPTY_FILE", "m")) == "file"
    assert field_path(Issue(0, "level", "MISSING_COLUMN", "m")) == "file.level"


def test_a_column_that_is_not_an_identifier_is_quoted_in_backticks() -> None:
    assert field_path(Issue(4, "Date of birth", "INVALID_DATE", "m")) == "rows[4].`Date of birth`"
    assert field_path(Issue(4, "a`b", "INVALID_DATE", "m")) == "rows[4].`a``b`"


def test_the_error_info_names_the_first_problem() -> None:
    report = Report(
        rows_total=9,
        errors=(
            Issue(5, "Date of birth", "INVALID_DATE", "not a date written YYYY-MM-DD"),
            Issue(7, "", "BLANK_ROW", "row 7 is empty"),
        ),
        error_count=2,
    )
    status = to_status(invalid_file_error(report))
    info = error_details_pb2.ErrorInfo()
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(bad)
    assert info.reason == "INVALID_FILE"
    assert dict(info.metadata) == {
        "error_count": "2",
        "rows_total": "9",
        "errors_listed": "2",
        "first_error_row": "5",
        "first_error_column": "Date of birth",
        "first_error_reason": "INVALID_DATE",
    }
    assert [(v.field, v.reason) for v in bad.field_violations] == [
        ("rows[5].`Date of birth`", "INVALID_DATE"),
        ("rows[7]", "BLANK_ROW"),
    ]
