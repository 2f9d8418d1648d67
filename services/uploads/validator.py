"""Validation of one uploaded CSV file while it streams: header, rows, recipients, limits.

The column rules (``credbatch.schema.columns``) and value rules (``credbatch.schema.values``)
are the shared ones, so a sample CSV always passes. This module adds what only a whole file
has: the header row, ragged and blank rows, duplicate recipients, encoding and size limits,
and the report (every problem counted, the first ``keep_errors`` kept, in row order).

Rows are numbered as a spreadsheet shows them (header = row 1; see ``credbatch.csvstream``);
row 0 stands for the whole file.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from credbatch.csvstream import CsvFormatError, CsvStreamReader
from credbatch.errors import ResourceExhausted
from credbatch.schema.columns import EMAIL_COLUMN, PHONE_COLUMN, match_header
from credbatch.schema.model import Medium, SchemaVersion
from credbatch.schema.values import Value, compile_row_validator
from services.uploads.recipients import RecipientIndex

EMPTY_FILE = "EMPTY_FILE"
NO_ROWS = "NO_ROWS"
BLANK_ROW = "BLANK_ROW"
RAGGED_ROW = "RAGGED_ROW"
DUPLICATE_RECIPIENT = "DUPLICATE_RECIPIENT"
TOO_MANY_ROWS = "TOO_MANY_ROWS"
FILE_TOO_LARGE = "FILE_TOO_LARGE"

MAX_MESSAGE_CHARS = 300
"""Longest message kept in a report: messages quote schema text (enum lists, names)."""
MAX_COLUMN_CHARS = 100


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of the file: spreadsheet row (0 = the file), column, code, message."""

    row: int
    column: str
    code: str
    message: str


class AcceptedRow(NamedTuple):
    """A valid row's normalised content: recipients and typed attribute values."""

    row: int
    email: str | None
    phone: str | None
    attributes: dict[str, Value]


@dataclass(frozen=True)
class Report:
    """The outcome of validating a whole file."""

    rows_total: int
    error_count: int
    errors: tuple[Issue, ...]  # the first kept problems, in row order

    @property
    def valid(self) -> bool:
        return self.error_count == 0


class FileValidator:
    """Feed the file's chunks, iterate the accepted rows, then ``finish`` for the report.

    Accepted rows keep coming after the first problem (the caller decides whether to keep
    writing); they are only those rows without any problem of their own, and duplicates are
    only known at ``finish``.
    """

    def __init__(
        self,
        schema: SchemaVersion,
        mediums: Collection[Medium],
        *,
        default_region: str = "US",
        max_rows: int = 1_000_000,
        max_bytes: int = 512 * 1024 * 1024,
        keep_errors: int = 100,
    ) -> None:
        self._schema = schema
        self._mediums = frozenset(mediums)
        self._rules = compile_row_validator(schema, self._mediums, default_region)
        self._reader = CsvStreamReader()
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._keep = keep_errors
        self._header_seen = False
        self._header_ok = False
        self._width = 0
        self._stopped = False  # the file cannot be read further (encoding, quoting)
        self._attribute_names = frozenset(a.name for a in schema.attributes)
        self._emails = RecipientIndex() if Medium.EMAIL in self._mediums else None
        self._phones = RecipientIndex() if Medium.SMS in self._mediums else None
        self.rows_total = 0
        self.error_count = 0
        self._errors: list[Issue] = []
        self._report: Report | None = None
        self._bytes = 0

    @property
    def bytes_read(self) -> int:
        return self._bytes

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0

    def _problem(self, row: int, column: str, code: str, message: str) -> None:
        self.error_count += 1
        if len(self._errors) < self._keep:
            self._errors.append(
                Issue(row, _clip(column, MAX_COLUMN_CHARS), code, _clip(message, MAX_MESSAGE_CHARS))
            )

    def feed(self, chunk: bytes) -> Iterator[AcceptedRow]:
        """The rows of ``chunk`` that passed every rule (iterate before the next feed).

        Raises:
            ResourceExhausted: the file is longer than ``max_bytes`` or ``max_rows``; reading
                stops at once.
        """
        self._bytes += len(chunk)
        if self._bytes > self._max_bytes:
            raise ResourceExhausted(
                f"the file is larger than the limit of {self._max_bytes} bytes; split it into "
                "several batches",
                reason=FILE_TOO_LARGE,
                metadata={"max_bytes": str(self._max_bytes)},
            )
        if not self._stopped:
            yield from self._read(self._reader.feed(chunk))

    def finish(self) -> Iterator[AcceptedRow]:
        """The last rows of the file; after it, ``report()`` is complete."""
        if not self._stopped:
            yield from self._read(self._reader.finish())
        if not self._header_seen and not self._stopped:
            self._problem(0, "", EMPTY_FILE, "the file is empty: it needs a header row")
        elif self._header_ok and self.rows_total == 0 and not self._stopped:
            self._problem(0, "", NO_ROWS, "the file has a header but no data rows")

    def _read(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[AcceptedRow]:
        try:
            for row, fields in rows:
                if not self._header_seen:
                    if not fields:
                        self._problem(row, "", BLANK_ROW, "the header row is empty")
                        continue
                    self._header(row, fields)
                    continue
                self.rows_total += 1
                if self.rows_total > self._max_rows:
                    raise ResourceExhausted(
                        f"the file has more than {self._max_rows} data rows, the limit; split "
                        "it into several batches",
                        reason=TOO_MANY_ROWS,
                        metadata={"max_rows": str(self._max_rows)},
                    )
                if self._header_ok:
                    accepted = self._row(row, fields)
                    if accepted is not None:
                        yield accepted
                elif not fields:
                    self._problem(row, "", BLANK_ROW, f"row {row} is empty")
        except CsvFormatError as error:
            self._stopped = True
            self._problem(error.row, "", error.code, error.message)

    def _header(self, row: int, fields: list[str]) -> None:
        self._header_seen = True
        match = match_header(fields, self._schema, self._mediums)
        for problem in match.problems:
            self._problem(row, problem.column, problem.code, problem.message)
        self._header_ok = match.ok
        self._width = len(fields)
        self._rules = self._rules.with_positions(match.positions)

    def _row(self, row: int, fields: list[str]) -> AcceptedRow | None:
        if not fields:
            self._problem(row, "", BLANK_ROW, f"row {row} is empty; remove it")
            return None
        count = len(fields)
        if count != self._width and (count < self._width or "".join(fields[self._width :]).strip()):
            self._problem(
                row,
                "",
                RAGGED_ROW,
                f"row {row} has {count} cells but the header has {self._width} (a missing "
                "or extra comma, or an unquoted comma inside a value?)",
            )
            return None
        values, errors = self._rules.validate(fields)
        for error in errors:
            self._problem(row, error.column, error.code, f"row {row}: {error.message}")
        email = values.pop(EMAIL_COLUMN, None) if self._emails is not None else None
        phone = values.pop(PHONE_COLUMN, None) if self._phones is not None else None
        # Recipients of invalid rows count too: a duplicate is worth reporting either way.
        if isinstance(email, str) and self._emails is not None:
            self._emails.add(email.casefold(), row)
        if isinstance(phone, str) and self._phones is not None:
            self._phones.add(phone, row)
        if errors:
            return None
        return AcceptedRow(
            row,
            email if isinstance(email, str) else None,
            phone if isinstance(phone, str) else None,
            values,
        )

    def report(self) -> Report:
        """Every problem counted; the first ``keep_errors`` kept, duplicates merged by row."""
        if self._report is None:
            duplicates: list[Issue] = []
            for column, index in ((EMAIL_COLUMN, self._emails), (PHONE_COLUMN, self._phones)):
                for duplicate in index.duplicates() if index is not None else ():
                    self.error_count += 1
                    if len(duplicates) < self._keep:
                        duplicates.append(
                            Issue(
                                duplicate.row,
                                column,
                                DUPLICATE_RECIPIENT,
                                f"row {duplicate.row}: the same {column} as row "
                                f"{duplicate.first_row}; each holder appears once per batch",
                            )
                        )
            duplicates.sort(key=_by_row)
            kept = list(heapq.merge(self._errors, duplicates, key=_by_row))[: self._keep]
            self._report = Report(self.rows_total, self.error_count, tuple(kept))
        return self._report


def _by_row(issue: Issue) -> int:
    return issue.row
