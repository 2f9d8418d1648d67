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
from itertools import repeat
from typing import NamedTuple, cast

from credbatch.csvstream import CsvFormatError, CsvStreamReader
from credbatch.errors import ResourceExhausted
from credbatch.schema.columns import EMAIL_COLUMN, PHONE_COLUMN, HeaderProblem, match_header
from credbatch.schema.model import Medium, SchemaVersion
from credbatch.schema.values import Value, compile_row_validator
from services.uploads.recipients import RecipientIndex, RecipientRun

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
BATCH_ROWS = 512
"""Rows validated together, column by column (see ``FileValidator._batch``)."""


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


@dataclass(frozen=True)
class BlockOutcome:
    """What validating one block of records found, to merge into the file's validator.

    ``next_row`` is the row after the block's last record (as its reader counted them);
    ``blank_rows_held`` are blank records at its end, which count only if a record with data
    follows in a later block; ``yielded`` says whether the reader yielded any record (which
    brings in blank records held before the block).
    """

    rows_total: int
    error_count: int
    errors: tuple[Issue, ...]
    stopped: bool
    yielded: bool
    next_row: int
    blank_rows_held: range
    emails: RecipientRun | None
    phones: RecipientRun | None


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
        self._region = default_region
        self._rules = compile_row_validator(schema, self._mediums, default_region)
        self._reader = CsvStreamReader()
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._keep = keep_errors
        self._header_seen = False
        self._header_ok = False
        self._header_fields: list[str] = []
        self._width = 0
        self._stopped = False  # the file cannot be read further (encoding, quoting)
        self._attribute_names = frozenset(a.name for a in schema.attributes)
        self._emails: RecipientIndex | RecipientRun | None = (
            RecipientIndex() if Medium.EMAIL in self._mediums else None
        )
        self._phones: RecipientIndex | RecipientRun | None = (
            RecipientIndex() if Medium.SMS in self._mediums else None
        )
        self.rows_total = 0
        self.error_count = 0
        self._errors: list[Issue] = []
        self._report: Report | None = None
        self._bytes = 0
        self._blank_rows_held = range(0)  # once blocks are merged in: see absorb()
        self._first_row = 1
        self._in_blocks = False  # records come as blocks' outcomes, not through the reader

    @classmethod
    def for_block(
        cls,
        schema: SchemaVersion,
        mediums: Collection[Medium],
        header: list[str],
        first_row: int,
        byte_offset: int,
        *,
        default_region: str = "US",
        keep_errors: int = 100,
    ) -> FileValidator:
        """A validator of one block of whole records from inside a file whose header row is
        ``header`` (its problems are the file's, not the block's); see ``block_outcome``."""
        validator = cls(
            schema, mediums, default_region=default_region, max_rows=1 << 62, max_bytes=1 << 62
        )
        validator._keep = keep_errors
        validator._reader = CsvStreamReader(first_row=first_row, byte_offset=byte_offset)
        validator._apply_header(header)
        validator._header_seen = True
        validator._first_row = first_row
        validator._emails = RecipientRun() if validator._emails is not None else None
        validator._phones = RecipientRun() if validator._phones is not None else None
        return validator

    def end_block(self, *, last: bool) -> Iterator[AcceptedRow]:
        """After a block's pieces: the last rows of the file when ``last`` (no file-level
        checks: those are the merging validator's)."""
        if last and not self._stopped:
            yield from self._read(self._reader.finish())

    def block_outcome(self) -> BlockOutcome:
        held = self._reader.blank_rows_held()
        next_row = self._reader.next_row
        emails, phones = self._emails, self._phones
        return BlockOutcome(
            rows_total=self.rows_total,
            error_count=self.error_count,
            errors=tuple(self._errors),
            stopped=self._stopped,
            yielded=next_row - self._first_row > len(held),
            next_row=next_row,
            blank_rows_held=held,
            emails=emails if isinstance(emails, RecipientRun) else None,
            phones=phones if isinstance(phones, RecipientRun) else None,
        )

    @property
    def schema(self) -> SchemaVersion:
        return self._schema

    @property
    def mediums(self) -> frozenset[Medium]:
        return self._mediums

    @property
    def default_region(self) -> str:
        return self._region

    @property
    def keep_errors(self) -> int:
        return self._keep

    @property
    def header(self) -> list[str] | None:
        """The header row's cells once read (None before, or once reading stopped)."""
        return self._header_fields if self._header_seen and not self._stopped else None

    @property
    def next_row(self) -> int:
        return self._reader.next_row

    @property
    def stopped(self) -> bool:
        return self._stopped

    def hold_blank_rows(self) -> None:
        """From here on the file's records come in blocks (``absorb``): the blank records
        this validator's reader holds wait for the first block's records."""
        self._blank_rows_held = self._reader.blank_rows_held()
        self._in_blocks = True

    def read_from(self, row: int, byte_offset: int) -> None:
        """Read the rest of the file here again (``feed_records``), from the record that is
        ``row`` at ``byte_offset``, just after the blocks merged so far."""
        held = self._blank_rows_held
        self._reader = CsvStreamReader(first_row=row, byte_offset=byte_offset)
        self._reader.hold_blank_rows(held)
        self._blank_rows_held = range(0)
        self._in_blocks = False

    def absorb(self, outcome: BlockOutcome) -> None:
        """Merge the next block's outcome, as if its records had been fed here.

        Raises:
            ResourceExhausted: the file now has more than ``max_rows`` data rows.
        """
        if self._stopped:
            return
        if outcome.yielded:
            for row in self._blank_rows_held:
                self._count_row()
                self._blank(row)
            self._blank_rows_held = outcome.blank_rows_held
        elif outcome.blank_rows_held:
            start = self._blank_rows_held.start if self._blank_rows_held else None
            self._blank_rows_held = range(
                outcome.blank_rows_held.start if start is None else start,
                outcome.blank_rows_held.stop,
            )
        self.rows_total += outcome.rows_total
        self._check_rows()
        self.error_count += outcome.error_count
        room = self._keep - len(self._errors)
        if room > 0:
            self._errors.extend(outcome.errors[:room])
        for index, run in ((self._emails, outcome.emails), (self._phones, outcome.phones)):
            if isinstance(index, RecipientIndex) and run is not None:
                index.add_run(run)
        self._stopped = outcome.stopped

    def count_bytes(self, size: int) -> None:
        """Count bytes read past this validator (blocks validated elsewhere).

        Raises:
            ResourceExhausted: the file is longer than ``max_bytes``.
        """
        self._bytes += size
        if self._bytes > self._max_bytes:
            raise ResourceExhausted(
                f"the file is larger than the limit of {self._max_bytes} bytes; split it into "
                "several batches",
                reason=FILE_TOO_LARGE,
                metadata={"max_bytes": str(self._max_bytes)},
            )

    def feed_records(self, chunk: bytes) -> Iterator[AcceptedRow]:
        """As ``feed``, the bytes counted already (``count_bytes``)."""
        if not self._stopped:
            yield from self._read(self._reader.feed(chunk))

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
        self.count_bytes(len(chunk))
        if not self._stopped:
            yield from self._read(self._reader.feed(chunk))

    def finish(self) -> Iterator[AcceptedRow]:
        """The last rows of the file; after it, ``report()`` is complete."""
        if not self._stopped and not self._in_blocks:
            yield from self._read(self._reader.finish())
        if not self._header_seen and not self._stopped:
            self._problem(0, "", EMPTY_FILE, "the file is empty: it needs a header row")
        elif self._header_ok and self.rows_total == 0 and not self._stopped:
            self._problem(0, "", NO_ROWS, "the file has a header but no data rows")

    def _read(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[AcceptedRow]:
        # Rows as wide as the header are gathered into a batch of consecutive rows and
        # validated a column at a time (``_batch``); any other record (the header, a blank or
        # ragged row, the row past the limit, the end of the reader's records or an error of
        # the file) first settles the batch, so problems and accepted rows come in row order
        # exactly as one row at a time.
        batch: list[tuple[int, list[str]]] = []
        width = self._width
        try:
            for row, fields in rows:
                if not self._header_seen:
                    if not fields:
                        self._problem(row, "", BLANK_ROW, "the header row is empty")
                        continue
                    self._header(row, fields)
                    width = self._width
                    continue
                if self.rows_total >= self._max_rows:
                    yield from self._batch(batch)
                    self._count_row()  # raises: past the limit
                self.rows_total += 1
                if len(fields) == width and self._header_ok:
                    batch.append((row, fields))
                    if len(batch) >= BATCH_ROWS:
                        yield from self._batch(batch)
                    continue
                yield from self._batch(batch)
                if not fields:
                    self._blank(row)
                elif self._header_ok:
                    accepted = self._row(row, fields)
                    if accepted is not None:
                        yield accepted
        except CsvFormatError as error:
            yield from self._batch(batch)
            self._stopped = True
            self._problem(error.row, "", error.code, error.message)
        else:
            yield from self._batch(batch)

    def _batch(self, batch: list[tuple[int, list[str]]]) -> Iterator[AcceptedRow]:
        """The accepted rows of ``batch`` (consecutive rows as wide as the header), which it
        then empties: column by column when no cell is invalid, else one row at a time."""
        if not batch:
            return
        columns = self._rules.validate_columns([fields for _, fields in batch])
        if columns is None:
            for row, fields in batch:
                accepted = self._row(row, fields)
                if accepted is not None:
                    yield accepted
            batch.clear()
            return
        # The recipient columns are required: every value of theirs is a str.
        emails = cast("list[str] | None", columns.pop(EMAIL_COLUMN, None))
        phones = cast("list[str] | None", columns.pop(PHONE_COLUMN, None))
        row_numbers = [row for row, _ in batch]
        batch.clear()
        if self._emails is None:
            emails = None
        elif emails is not None:
            self._emails.add_many([email.casefold() for email in emails], row_numbers[0])
        if self._phones is None:
            phones = None
        elif phones is not None:
            self._phones.add_many(phones, row_numbers[0])
        count = len(row_numbers)
        attributes: list[dict[str, Value]]
        if columns:
            names = list(columns)
            attributes = [
                dict(zip(names, values, strict=True))
                for values in zip(*columns.values(), strict=True)
            ]
            for name, values in columns.items():
                if None in values:  # empty optional cells: absent from their rows
                    for at, value in enumerate(values):
                        if value is None:
                            del attributes[at][name]
        else:
            attributes = [{} for _ in range(count)]
        yield from map(
            AcceptedRow,
            row_numbers,
            emails if emails is not None else repeat(None, count),
            phones if phones is not None else repeat(None, count),
            attributes,
        )

    def _count_row(self) -> None:
        self.rows_total += 1
        self._check_rows()

    def _check_rows(self) -> None:
        if self.rows_total > self._max_rows:
            raise ResourceExhausted(
                f"the file has more than {self._max_rows} data rows, the limit; split "
                "it into several batches",
                reason=TOO_MANY_ROWS,
                metadata={"max_rows": str(self._max_rows)},
            )

    def _blank(self, row: int) -> None:
        if self._header_ok:
            self._problem(row, "", BLANK_ROW, f"row {row} is empty; remove it")
        else:
            self._problem(row, "", BLANK_ROW, f"row {row} is empty")

    def _header(self, row: int, fields: list[str]) -> None:
        self._header_seen = True
        for problem in self._apply_header(fields):
            self._problem(row, problem.column, problem.code, problem.message)

    def _apply_header(self, fields: list[str]) -> tuple[HeaderProblem, ...]:
        match = match_header(fields, self._schema, self._mediums)
        self._header_fields = fields
        self._header_ok = match.ok
        self._width = len(fields)
        self._rules = self._rules.with_positions(match.positions)
        return tuple(match.problems)

    def _row(self, row: int, fields: list[str]) -> AcceptedRow | None:
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
                if not isinstance(index, RecipientIndex):
                    continue
                for duplicate in index.duplicates():
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
                index.close()  # the report is kept: the index is not read again
            duplicates.sort(key=_by_row)
            kept = list(heapq.merge(self._errors, duplicates, key=_by_row))[: self._keep]
            self._report = Report(self.rows_total, self.error_count, tuple(kept))
        return self._report


def _by_row(issue: Issue) -> int:
    return issue.row
