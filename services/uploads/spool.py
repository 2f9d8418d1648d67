"""The accepted rows of an upload, kept in a temporary file while the client streams.

No database connection is held while a client sends its file (a slow client would otherwise
hold a pooled connection and a transaction open for as long as it likes); rows are spooled
here, and only a file found valid is written, in one short transaction, from this spool.

Rows are compact: one JSON array per line, ``[row, email, phone, mask, values...]``, where
bit ``i`` of ``mask`` says that the schema's ``i``-th attribute is present and ``values``
are the present ones in schema order, so attribute names are not repeated on every row. The
spool is bounded: a file within CREDBATCH_MAX_BYTES spools to less than twice its size (a
row adds at most a row number, a mask and JSON punctuation to its cells), and the spool
refuses to grow past that.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, NamedTuple

import orjson

from credbatch.errors import Internal, ResourceExhausted
from services.uploads.validator import FILE_TOO_LARGE, AcceptedRow

SPOOL_FACTOR = 2
_IN_MEMORY_BYTES = 1 << 20


class SpooledRow(NamedTuple):
    """A row ready for the records INSERT: spreadsheet row, recipients, attributes JSON."""

    row: int
    email: str | None
    phone: str | None
    attributes_json: str


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A JSON number when a double holds it exactly (what JSON readers will make of it),
        # the decimal text otherwise, so no digit is lost.
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    raise TypeError(type(value).__name__)


def attribute_positions(attribute_names: Sequence[str]) -> dict[str, int]:
    """Each attribute's bit in a spooled row's mask."""
    return {name: i for i, name in enumerate(attribute_names)}


def encode_row(row: AcceptedRow, positions: dict[str, int]) -> bytes:
    """One accepted row as a spool line (``positions`` from ``attribute_positions``)."""
    mask = 0
    present: list[Any] = []
    for name, value in row.attributes.items():
        position = positions.get(name)
        if position is None:
            raise Internal("an accepted row has an attribute the schema does not have")
        mask |= 1 << position
        present.append((position, value))
    present.sort(key=lambda item: item[0])
    return orjson.dumps(
        [row.row, row.email, row.phone, mask, *(value for _, value in present)],
        default=_json_default,
        option=orjson.OPT_APPEND_NEWLINE,
    )


class RowSpool:
    """Append accepted rows, then read them back once; a context manager that deletes them."""

    def __init__(self, attribute_names: Sequence[str], max_bytes: int) -> None:
        self._names = tuple(attribute_names)
        self._index = attribute_positions(self._names)
        self._limit = SPOOL_FACTOR * max_bytes
        # In memory while small, then an anonymous file (deleted when closed, or by the OS
        # if the process dies).
        self._file: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by __exit__
            max_size=_IN_MEMORY_BYTES
        )
        self.bytes = 0
        self.rows = 0

    def __enter__(self) -> RowSpool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._file.close()

    def add(self, row: AcceptedRow) -> None:
        """Spool one accepted row.

        Raises:
            ResourceExhausted: the spool would pass its bound.
        """
        self.add_lines(encode_row(row, self._index), 1)

    def add_lines(self, lines: bytes, rows: int) -> None:
        """Spool ``rows`` rows already encoded (``encode_row``), in order.

        Raises:
            ResourceExhausted: the spool would pass its bound.
        """
        self.bytes += len(lines)
        if self.bytes > self._limit:
            raise ResourceExhausted(
                "the file's rows are larger than the upload limit; split it into several batches",
                reason=FILE_TOO_LARGE,
                metadata={"max_bytes": str(self._limit // SPOOL_FACTOR)},
            )
        self._file.write(lines)
        self.rows += rows

    def __iter__(self) -> Iterator[SpooledRow]:
        """Every spooled row, in the order added, with its attributes as stored JSON."""
        self._file.seek(0)
        for line in self._file:
            number, email, phone, mask, *values = orjson.loads(line)
            positions = (i for i in range(len(self._names)) if mask >> i & 1)
            attributes = dict(zip((self._names[i] for i in positions), values, strict=True))
            yield SpooledRow(number, email, phone, orjson.dumps(attributes).decode())
