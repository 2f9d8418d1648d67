"""The error of an invalid file: a bounded BadRequest, whatever the file.

Each violation's field is a path a program can read: ``rows[12].email`` is the cell of data row
12 (as a spreadsheet numbers rows: the header is row 1) in column ``email``; a column name that
is not an identifier is quoted in backticks (a backtick in it doubled), as AIP-161 quotes map
keys: ``rows[12].`Date of birth```; ``rows[12]`` is the whole row, ``file`` the whole file and
``file.email`` a column of the whole file.
The ErrorInfo names the first problem's row, column and reason in its metadata.

gRPC carries the status details in a trailer, and clients refuse metadata above 8 KiB by
default. So the violations are the first problems in row order, at most
``MAX_VIOLATIONS``, each description clipped, and only as many as fit in
``DETAILS_BUDGET_BYTES`` (the trailer is that, base64-encoded, plus a small ErrorInfo). The
ErrorInfo carries the total count; validate_only returns the full report instead.
"""

from __future__ import annotations

import re

from credbatch.errors import FieldViolation, InvalidArgument
from services.uploads.validator import Issue, Report

MAX_VIOLATIONS = 100
MAX_DESCRIPTION_CHARS = 160
DETAILS_BUDGET_BYTES = 3000
# Protobuf framing of one FieldViolation inside BadRequest (tags, lengths), generously.
_VIOLATION_OVERHEAD = 12


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_COLUMN_CHARS = 40


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def field_path(issue: Issue) -> str:
    """The BadRequest field path of a problem: ``rows[N].column``, ``rows[N]`` (the row),
    ``file.column`` (a column of the whole file) or ``file``."""
    path = f"rows[{issue.row}]" if issue.row else "file"
    if not issue.column:
        return path
    column = _clip(issue.column, MAX_COLUMN_CHARS)
    if _IDENTIFIER.fullmatch(column):
        return f"{path}.{column}"
    return f"{path}.`{column.replace('`', '``')}`"


def invalid_file_error(report: Report) -> InvalidArgument:
    """INVALID_ARGUMENT naming the first problems of ``report`` (which must be invalid)."""
    violations: list[FieldViolation] = []
    used = 0
    for issue in report.errors[:MAX_VIOLATIONS]:
        violation = FieldViolation(
            field_path(issue), _clip(issue.message, MAX_DESCRIPTION_CHARS), issue.code
        )
        size = (
            len(violation.field.encode())
            + len(violation.description.encode())
            + len(violation.reason.encode())
            + _VIOLATION_OVERHEAD
        )
        if used + size > DETAILS_BUDGET_BYTES:
            break
        used += size
        violations.append(violation)
    shown = len(violations)
    message = (
        f"the file is invalid: {report.error_count} problem"
        f"{'s' if report.error_count != 1 else ''} in {report.rows_total} data rows"
    )
    if shown < report.error_count:
        message += f"; the first {shown} are listed (validate_only returns the full report)"
    first = report.errors[0]
    return InvalidArgument(
        message,
        reason="INVALID_FILE",
        metadata={
            "error_count": str(report.error_count),
            "rows_total": str(report.rows_total),
            "errors_listed": str(shown),
            # The first problem, structured: row 0 is the file; column empty for a whole row.
            "first_error_row": str(first.row),
            "first_error_column": _clip(first.column, MAX_COLUMN_CHARS),
            "first_error_reason": first.code,
        },
        violations=violations,
    )
