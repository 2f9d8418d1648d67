"""An upload's bytes cut into blocks of whole records, for validation in several processes.

A block ends just after a line feed that ends a record (not one inside a quoted field), so a
process can read it alone; its first row is the previous block's first row plus the records
the previous block holds. Both are found here from the bytes alone, without decoding: the
quote, comma, CR and LF bytes never occur inside a multi-byte UTF-8 character, and quotes are
followed with the rules of ``credbatch.csvstream`` (a quote opens a quoted field only at the
start of a field; inside one, ``""`` is a literal quote and a lone quote closes it), so a
line end counts as a record's end exactly when the reader would end the record there. The
reader is still the judge: the validating process reports the row it ended on, and the merge
refuses a block whose rows disagree (``services.uploads.parallel``).

A block keeps the chunks it was sent in (cut at the block's ends), because the reader's
limit on a record's length is checked where a chunk ends: fed the same pieces, a process
reads the block exactly as the service would have read those bytes itself.
"""

from __future__ import annotations

from dataclasses import dataclass

_QUOTE = ord('"')
_FIELD_STARTS = frozenset(b",\r\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Block:
    """Whole records: the chunks' pieces, the file offset of the first byte, the record count."""

    pieces: tuple[bytes, ...]
    byte_offset: int
    records: int

    @property
    def size(self) -> int:
        return sum(len(piece) for piece in self.pieces)


class RecordBlocks:
    """Feed the file's chunks; take each block once it holds at least ``size`` bytes.

    The first block is cut at ``first_size`` (so a small file is one block). Bytes with no
    record-ending LF (an unclosed quote, lines ended by a bare CR as old Mac files are) are
    held until ``finish``: the caller watches ``held``.
    """

    def __init__(self, size: int, first_size: int | None = None) -> None:
        self._size = size
        self._pieces: list[bytes] = []
        self._held = 0  # bytes in _pieces
        self._offset = 0  # file offset of the first held byte
        self._seen = 0  # bytes scanned so far, the file's
        self._in_quotes = False
        self._quote_at_end = False  # in quotes, and the last byte scanned was a quote
        self._last = -1  # the last byte scanned (-1: none yet)
        self._field_start = 0  # file offset where the first field starts (after a BOM)
        self._head = b""
        self._records = 0  # record ends among the held bytes
        # Where blocks end: offset among the held bytes just after a record-ending LF, and
        # the record ends before it; each at least a block's size after the one before.
        self._cuts: list[tuple[int, int]] = []
        self._next_cut = size if first_size is None else first_size
        self._cr_at_end = False  # the last byte scanned was a CR outside quotes

    def feed(self, chunk: bytes) -> list[Block]:
        """The blocks this chunk completes."""
        if not chunk:
            return []
        if len(self._head) < len(_BOM) and self._seen == len(self._head):
            # A BOM is dropped by the reader: a quote just after it starts the first field.
            self._head += chunk[: len(_BOM) - len(self._head)]
            if self._head == _BOM:
                self._field_start = len(_BOM)
        self._scan(chunk)
        self._pieces.append(chunk)
        self._held += len(chunk)
        blocks = []
        while self._cuts:
            blocks.append(self._take(*self._cuts.pop(0)))
        return blocks

    @property
    def held(self) -> int:
        """Bytes fed and not yet in a block."""
        return self._held

    def finish(self) -> Block | None:
        """The rest of the file (records not necessarily ended), if any byte is left."""
        if not self._held:
            return None
        block = Block(tuple(self._pieces), self._offset, -1)
        self._pieces = []
        self._held = 0
        return block

    def _take(self, cut: int, records: int) -> Block:
        pieces: list[bytes] = []
        rest: list[bytes] = []
        at = 0
        for piece in self._pieces:
            end = at + len(piece)
            if end <= cut:
                pieces.append(piece)
            elif at >= cut:
                rest.append(piece)
            else:
                pieces.append(piece[: cut - at])
                rest.append(piece[cut - at :])
            at = end
        block = Block(tuple(pieces), self._offset, records)
        self._pieces = rest
        self._held -= cut
        self._offset += cut
        self._records -= records
        self._next_cut -= cut
        self._cuts = [(at - cut, count - records) for at, count in self._cuts]
        return block

    def _scan(self, chunk: bytes) -> None:
        """Follow the quoting through ``chunk``, counting record ends and placing cuts."""
        base = self._held  # offset of chunk[0] among the held bytes
        file_base = self._seen
        self._seen += len(chunk)
        pos = 0
        end = len(chunk)
        if self._quote_at_end:
            self._quote_at_end = False
            if chunk[0] == _QUOTE:
                pos = 1  # the pair "" inside a quoted field: still inside
            else:
                self._in_quotes = False
        elif self._cr_at_end and chunk[0] == ord("\n"):
            # CR LF split between two chunks: one record end, already counted at the CR.
            self._records -= 1
        self._cr_at_end = False
        while pos < end:
            if self._in_quotes:
                quote = chunk.find(b'"', pos)
                if quote == -1:
                    pos = end
                elif quote + 1 == end:
                    self._quote_at_end = True
                    pos = end
                elif chunk[quote + 1] == _QUOTE:
                    pos = quote + 2
                else:
                    self._in_quotes = False
                    pos = quote + 1
                continue
            quote = chunk.find(b'"', pos)
            stop = end if quote == -1 else quote
            self._count(chunk, pos, stop, base)
            if quote == -1:
                pos = end
                continue
            before = chunk[quote - 1] if quote > 0 else self._last
            if file_base + quote == self._field_start or before in _FIELD_STARTS:
                self._in_quotes = True
            pos = quote + 1
        self._last = chunk[-1]
        self._cr_at_end = not self._in_quotes and chunk[-1] == ord("\r")

    def _count(self, chunk: bytes, start: int, stop: int, base: int) -> None:
        """Record ends (LF, CR LF, bare CR) in chunk[start:stop], outside quotes; a cut after
        the first LF at or past the next cut's place."""
        while start < stop:
            feed = chunk.find(b"\n", max(start, self._next_cut - base - 1), stop)
            if feed == -1:
                break
            self._records += _ends(chunk, start, feed + 1)
            self._cuts.append((base + feed + 1, self._records))
            self._next_cut = base + feed + 1 + self._size
            start = feed + 1
        self._records += _ends(chunk, start, stop)


def _ends(chunk: bytes, start: int, stop: int) -> int:
    if start >= stop:
        return 0
    feeds = chunk.count(b"\n", start, stop)
    returns = chunk.count(b"\r", start, stop)
    if feeds and returns:
        return feeds + returns - chunk.count(b"\r\n", start, stop)
    return feeds + returns
