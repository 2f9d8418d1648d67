"""The error of an invalid file: a bounded BadRequest, whatever the file.

gRPC carries the status details in a trailer, and clients refuse metadata above 8 KiB by
default. So the violations are the first problems in row order, at most
``MAX_VIOLATIONS``, each description clipped, and only as many as fit in
``DETAILS_BUDGET_BYTES`` (the trailer is that, base64-encoded, plus a small ErrorInfo). The
ErrorInfo carries the total count; validate_only returns the full report instead.
"""

from __future__ import annotations

from credbatch.errors import FieldViolation, InvalidArgument
from services.uploads.validator import Report

MAX_VIOLATIONS = 100
MAX_DESCRIPTION_CHARS = 160
DETAILS_BUDGET_BYTES = 3000
# Protobuf framing of one FieldViolation inside BadRequest (tags, lengths), generously.
_VIOLATION_OVERHEAD = 12


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def invalid_file_error(report: Report) -> InvalidArgument:
    """INVALID_ARGUMENT naming the first problems of ``report`` (which must be invalid)."""
    violations: list[FieldViolation] = []
    used = 0
    for issue in report.errors[:MAX_VIOLATIONS]:
        field = f"row {issue.row}" if issue.row else "file"
        if issue.column:
            field += f", column {_clip(issue.column, 40)}"
        violation = FieldViolation(field, _clip(issue.message, MAX_DESCRIPTION_CHARS), issue.code)
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
    return InvalidArgument(
        message,
        reason="INVALID_FILE",
        metadata={
            "error_count": str(report.error_count),
            "rows_total": str(report.rows_total),
            "errors_listed": str(shown),
        },
        violations=violations,
    )
