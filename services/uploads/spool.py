"""The accepted rows of an upload, kept in a temporary file while the client streams.

No database connection is held while a client sends its file (a slow client would otherwise
hold a pooled connection and a transaction open for as long as it likes); rows are spooled
here, and written from this spool in one transaction once the client's stream has ended:
read back all at once after the validation, or as they are spooled while it still runs
(``follow``). Only a file found valid is committed.

Rows are compact: one JSON array per line, ``[row, email, phone, mask, values...]``, where
bit ``i`` of ``mask`` says that the schema's ``i``-th attribute is present and ``values``
are the present ones in schema order, so attribute names are not repeated on every row. The
spool is bounded: a file within CREDBATCH_MAX_BYTES spools to less than twice its size (a
row adds at most a row number, a mask and JSON punctuation to its cells), and the spool
refuses to grow past that.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, NamedTuple

import orjson

from credbatch.errors import Internal, ResourceExhausted
from services.uploads.validator import FILE_TOO_LARGE, AcceptedRow

SPOOL_FACTOR = 2
_IN_MEMORY_BYTES = 1 << 20
_FOLLOW_BYTES = 1 << 20


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
        self._written = 0  # bytes of whole lines in the file
        self._added = asyncio.Event()

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
        self._written += len(lines)
        self.rows += rows
        self._added.set()

    def __iter__(self) -> Iterator[SpooledRow]:
        """Every spooled row, in the order added, with its attributes as stored JSON."""
        self._file.seek(0)
        for line in self._file:
            yield self._decode(line)

    async def follow(self, adding: asyncio.Future[Any]) -> AsyncIterator[SpooledRow]:
        """Every row, in the order added, as it is added, while ``adding`` (what adds them)
        runs: rows are read back while more are still being written.

        Raises:
            What ``adding`` raised, once every row added before was read.
        """
        adding.add_done_callback(lambda _: self._added.set())
        offset = 0
        while True:
            if offset < self._written:
                data = self._read(offset, self._written)
                offset += len(data)
                for line in data.split(b"\n")[:-1]:
                    yield self._decode(line)
                continue
            if adding.done():
                adding.result()
                return
            self._added.clear()
            await self._added.wait()

    def _read(self, offset: int, end: int) -> bytes:
        """Whole lines from ``offset``, about ``_FOLLOW_BYTES`` of them (more for a longer
        line), leaving the file positioned for the next write."""
        self._file.seek(offset)
        data = self._file.read(min(end - offset, _FOLLOW_BYTES))
        if offset + len(data) < end and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            data = data[:cut] if cut else data + self._file.readline()
        self._file.seek(0, 2)
        return data

    def _decode(self, line: bytes) -> SpooledRow:
        number, email, phone, mask, *values = orjson.loads(line)
        positions = (i for i in range(len(self._names)) if mask >> i & 1)
        attributes = dict(zip((self._names[i] for i in positions), values, strict=True))
        return SpooledRow(number, email, phone, orjson.dumps(attributes).decode())
