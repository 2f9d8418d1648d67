"""THE CSV column rules: which columns a batch file has, and how a header row matches them.

The sample CSV (TemplateService) and the upload validator both use these functions, so a
sample file always passes the upload's header check.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from credbatch.schema.examples import EXAMPLE_EMAIL, EXAMPLE_PHONE, example_value, format_hint
from credbatch.schema.model import Attribute, Medium, SchemaVersion

EMAIL_COLUMN = "email"
PHONE_COLUMN = "phone"

MISSING_COLUMN = "MISSING_COLUMN"
UNKNOWN_COLUMN = "UNKNOWN_COLUMN"
DUPLICATE_COLUMN = "DUPLICATE_COLUMN"


@dataclass(frozen=True, slots=True)
class Column:
    """One expected column of a batch CSV.

    attribute is None for the recipient columns (`email`, `phone`) that a medium adds.
    """

    name: str
    required: bool
    description: str
    example: str
    attribute: Attribute | None = None


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """One problem of a header row. column_index is the 0-based cell index, None if missing."""

    code: str
    column: str
    column_index: int | None
    message: str


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """How a header row maps onto the expected columns.

    positions[i] is the index of the file's cell holding expected column i, or -1 when the
    column is missing.
    """

    columns: tuple[Column, ...]
    positions: tuple[int, ...]
    problems: tuple[HeaderProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def header_key(cell: str) -> str:
    """The form in which header cells are compared: trimmed and ignoring case."""
    return cell.strip().casefold()


def recipient_columns(mediums: Collection[Medium]) -> list[Column]:
    """`email` iff EMAIL is a medium, `phone` iff SMS is: the columns a medium adds."""
    columns: list[Column] = []
    if Medium.EMAIL in mediums:
        columns.append(
            Column(
                EMAIL_COLUMN,
                True,
                "The holder's email address; the invitation email is sent to it.",
                EXAMPLE_EMAIL,
            )
        )
    if Medium.SMS in mediums:
        columns.append(
            Column(
                PHONE_COLUMN,
                True,
                "The holder's mobile number, international format (+country code) preferred; "
                "the invitation SMS is sent to it.",
                EXAMPLE_PHONE,
            )
        )
    return columns


def expected_columns(schema: SchemaVersion, mediums: Collection[Medium]) -> list[Column]:
    """`email` iff EMAIL is a medium, `phone` iff SMS is, then the attributes in order.

    `Cred_URL` is never a column: the system fills it.
    """
    columns = recipient_columns(mediums)
    for attribute in schema.attributes:
        hint = format_hint(attribute)
        description = f"{attribute.description} ({hint})" if attribute.description else hint
        if not attribute.required:
            description += "; optional, may be left empty"
        columns.append(
            Column(
                attribute.name,
                attribute.required,
                description,
                example_value(attribute),
                attribute,
            )
        )
    return columns


def match_header(
    header_cells: Sequence[str], schema: SchemaVersion, mediums: Collection[Medium]
) -> HeaderMatch:
    """Match a header row; every missing, unknown and duplicated column is reported."""
    columns = tuple(expected_columns(schema, mediums))
    wanted = {header_key(column.name): i for i, column in enumerate(columns)}
    positions = [-1] * len(columns)
    problems: list[HeaderProblem] = []
    first_seen: dict[str, int] = {}
    for cell_index, cell in enumerate(header_cells):
        key = header_key(cell)
        if key in first_seen:
            problems.append(
                HeaderProblem(
                    DUPLICATE_COLUMN,
                    cell.strip(),
                    cell_index,
                    f"column {cell_index + 1} `{cell.strip()}` repeats column "
                    f"{first_seen[key] + 1}",
                )
            )
            continue
        first_seen[key] = cell_index
        expected = wanted.get(key)
        if expected is None:
            shown = cell.strip()
            if not shown:
                message = f"column {cell_index + 1} has an empty header"
            elif key == "cred_url":
                message = f"column {cell_index + 1} `{shown}` is filled by the system; remove it"
            else:
                message = (
                    f"column {cell_index + 1} `{shown}` is not a column of this schema and mediums"
                )
            problems.append(HeaderProblem(UNKNOWN_COLUMN, shown, cell_index, message))
        else:
            positions[expected] = cell_index
    for i, column in enumerate(columns):
        if positions[i] < 0:
            problems.append(
                HeaderProblem(
                    MISSING_COLUMN, column.name, None, f"column `{column.name}` is missing"
                )
            )
    return HeaderMatch(columns, tuple(positions), tuple(problems))
