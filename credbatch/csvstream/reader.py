"""Incremental CSV reading from byte chunks, in memory bounded by the chunk size.

Bytes are decoded with an incremental UTF-8 decoder (a leading BOM is dropped), split into
lines with ``io.StringIO(newline="")`` (CRLF, LF and bare CR, line ends kept) and handed to
Python's ``csv`` module once a whole record is known to be there. Whether a record continues
on the next line (a quoted field holding a line break) is decided by ``_ends_in_quotes``, a
small copy of the ``csv`` module's quoting rules that only looks at the quote characters, so
a record split across two chunks is parsed once, whole, exactly as ``csv.reader`` would parse
the complete file.

Row numbers are what a spreadsheet shows: the header is row 1 and every *record* is one row,
so a record whose quoted field spans three lines is still one row, and the next record is the
row after it (line numbers would disagree with what the user sees in Excel or LibreOffice).

Blank records (no field, or only empty/whitespace fields, e.g. the ``,,,`` rows spreadsheets
export) at the end of the file are dropped; blank records followed by data are yielded as
``(row, [])`` so the caller can report them.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator

Row = tuple[int, list[str]]
"""One record: its spreadsheet row number (header = 1) and its fields (``[]`` when blank)."""

DEFAULT_MAX_RECORD_CHARS = 1 << 20
"""Longest record accepted (characters); bounds memory when a quote is never closed."""

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class CsvFormatError(Exception):
    """The bytes are not a readable CSV file; reading cannot go on past this point.

    Attributes:
        code: stable machine code (``NOT_UTF8``, ``UNCLOSED_QUOTE``, ``RECORD_TOO_LONG``,
            ``MALFORMED_CSV``).
        message: human explanation (never quotes the file's content).
        row: spreadsheet row where the problem is (header = 1).
        byte_offset: offset in the file of the offending byte, when known.
    """

    def __init__(self, code: str, message: str, row: int, byte_offset: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.row = row
        self.byte_offset = byte_offset


def _has_line_end(text: str) -> bool:
    return "\n" in text or "\r" in text


def _ends_in_quotes(line: str, in_quotes: bool) -> bool:
    """Whether ``line`` ends inside a quoted field, given whether it started inside one.

    Mirrors ``csv``'s default dialect (doublequote, non-strict): a quote opens a quoted field
    only at the start of a field; inside one, ``""`` is a literal quote and a lone quote closes
    it; any other quote is a literal character.
    """
    i = line.find('"')
    while i != -1:
        if in_quotes:
            if line.startswith('"', i + 1):
                i = line.find('"', i + 2)
                continue
            in_quotes = False
        elif i == 0 or line[i - 1] == ",":
            in_quotes = True
        i = line.find('"', i + 1)
    return in_quotes


class CsvStreamReader:
    """Turns a stream of byte chunks into CSV records.

    Feed each chunk with ``feed`` and iterate what it returns, then iterate ``finish()``.
    Every method raises ``CsvFormatError`` when the file cannot be read further; the rows
    yielded before the error are valid records.
    """

    def __init__(
        self,
        max_record_chars: int = DEFAULT_MAX_RECORD_CHARS,
        *,
        first_row: int = 1,
        byte_offset: int = 0,
    ) -> None:
        """``first_row`` and ``byte_offset`` > 0 read a run of whole records from inside a file
        (its first record is that row, its first byte at that offset): no BOM or UTF-16 check
        there, and rows and offsets in problems are the file's."""
        within = byte_offset > 0
        self._decoder = codecs.getincrementaldecoder("utf-8" if within else "utf-8-sig")("strict")
        self._max_record_chars = max_record_chars
        self._head = b""  # the first bytes, until the UTF-16 check has seen enough
        self._head_checked = within
        self._bytes_decoded = byte_offset  # bytes handed to the decoder so far
        # Text after the last complete line, as the pieces it arrived in: joined only once a
        # line end arrives, so a long line costs time linear in its length, not quadratic.
        self._partial: list[str] = []
        self._partial_chars = 0
        self._pending: list[str] = []  # lines of a record whose quoted field is still open
        self._pending_chars = 0
        self._in_quotes = False
        self._next_row = first_row
        self._blank_first = 0
        self._blank_count = 0

    @property
    def bytes_read(self) -> int:
        """Bytes fed so far."""
        return self._bytes_decoded + len(self._head)

    @property
    def next_row(self) -> int:
        """The row the next record will have."""
        return self._next_row

    def blank_rows_held(self) -> range:
        """Blank records read but not yet yielded: yielded before the next record with data,
        dropped at the end of the file."""
        return range(self._blank_first, self._blank_first + self._blank_count)

    def hold_blank_rows(self, rows: range) -> None:
        """Start as if ``rows``, blank records just before this reader's first, were held."""
        if rows:
            if rows.stop != self._next_row:
                raise ValueError("held blank rows must come just before the next row")
            self._blank_first = rows.start
            self._blank_count = len(rows)

    def feed(self, chunk: bytes) -> Iterator[Row]:
        """Records completed by ``chunk`` (a generator: iterate it before the next feed)."""
        if not self._head_checked:
            self._head += chunk
            if len(self._head) < 2:
                return
            chunk, self._head = self._check_head(), b""
        yield from self._decode(chunk, final=False)

    def finish(self) -> Iterator[Row]:
        """The records left at the end of the file; blank trailing records are dropped."""
        if not self._head_checked:
            chunk, self._head = self._check_head(), b""
            yield from self._decode(chunk, final=False)
        yield from self._decode(b"", final=True)
        if self._in_quotes:
            raise CsvFormatError(
                "UNCLOSED_QUOTE",
                f'row {self._next_row}: a quoted field is never closed (a `"` is missing '
                "before the end of the file)",
                self._next_row,
            )

    def _check_head(self) -> bytes:
        self._head_checked = True
        if self._head.startswith(_UTF16_BOMS):
            raise CsvFormatError(
                "NOT_UTF8",
                "the file is UTF-16 text, not UTF-8: save it as CSV UTF-8 and upload it again",
                1,
                0,
            )
        return self._head

    def _decode(self, chunk: bytes, *, final: bool) -> Iterator[Row]:
        buffered = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            offset = max(0, self._bytes_decoded - buffered + exc.start)
            good = bytes(exc.object[: exc.start]).decode("utf-8")
            if offset == exc.start and good.startswith("\ufeff"):
                good = good[1:]
            yield from self._lines(good, final=False)
            bad = exc.object[exc.start]
            row = self._next_row
            raise CsvFormatError(
                "NOT_UTF8",
                f"the file is not UTF-8 text: byte 0x{bad:02X} at byte offset {offset} "
                f"(row {row}) is not valid UTF-8; save the file as CSV UTF-8 and upload it "
                "again",
                row,
                offset,
            ) from None
        self._bytes_decoded += len(chunk)
        yield from self._lines(text, final=final)

    def _lines(self, text: str, *, final: bool) -> Iterator[Row]:
        if not final and not _has_line_end(text) and not self._partial_ends_in_cr():
            # Only new text is searched for a line end: the held-back line just grows.
            if text:
                self._partial.append(text)
                self._partial_chars += len(text)
                if self._partial_chars + self._pending_chars > self._max_record_chars:
                    raise self._too_long()
            return
        if self._partial:
            self._partial.append(text)
            text = "".join(self._partial)
            self._partial.clear()
            self._partial_chars = 0
        if not text:
            return
        lines = io.StringIO(text, newline="").readlines()
        last = lines[-1]
        # Hold back an unterminated line, and a trailing CR whose LF may open the next chunk.
        if not final and (last.endswith("\r") or not last.endswith("\n")):
            held = lines.pop()
            self._partial.append(held)
            self._partial_chars = len(held)
        ready: list[str] = []
        records = 0
        too_long = False
        for line in lines:
            if self._in_quotes or '"' in line:
                self._in_quotes = _ends_in_quotes(line, self._in_quotes)
            if self._in_quotes:
                self._pending.append(line)
                self._pending_chars += len(line)
                if self._pending_chars > self._max_record_chars:
                    too_long = True
                    break
                continue
            if self._pending:
                ready.extend(self._pending)
                self._pending.clear()
                self._pending_chars = 0
            ready.append(line)
            records += 1
        if self._partial_chars + self._pending_chars > self._max_record_chars:
            too_long = True
        if records:
            yield from self._records(ready)
        if too_long:
            raise self._too_long()

    def _partial_ends_in_cr(self) -> bool:
        return bool(self._partial) and self._partial[-1].endswith("\r")

    def _too_long(self) -> CsvFormatError:
        row = self._next_row
        return CsvFormatError(
            "RECORD_TOO_LONG",
            f"row {row} is longer than {self._max_record_chars} characters (is a quoted "
            'field missing its closing `"`?)',
            row,
        )

    def _records(self, lines: list[str]) -> Iterator[Row]:
        try:
            for fields in csv.reader(lines):
                row = self._next_row
                self._next_row += 1
                if not any(fields) or not "".join(fields).strip():
                    if not self._blank_count:
                        self._blank_first = row
                    self._blank_count += 1
                    continue
                if self._blank_count:
                    for blank in range(self._blank_first, self._blank_first + self._blank_count):
                        yield blank, []
                    self._blank_count = 0
                yield row, fields
        except csv.Error as exc:
            raise CsvFormatError(
                "MALFORMED_CSV", f"row {self._next_row}: not valid CSV ({exc})", self._next_row
            ) from None


def iter_rows(
    chunks: Iterable[bytes], max_record_chars: int = DEFAULT_MAX_RECORD_CHARS
) -> Iterator[Row]:
    """Every record of a file given as byte chunks (convenience for tests and tools)."""
    reader = CsvStreamReader(max_record_chars)
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.finish()
