"""One upload's validation, across the validation pool's processes when it is large enough.

The file is cut into blocks of whole records (``services.uploads.blocks``). The first block,
at least ``FIRST_BLOCK_BYTES``, is validated here in the service's process, as every block is
without a pool: a small upload never pays a hand-over, and the header row is then known.
The blocks after it go to the pool, at most ``IN_FLIGHT_PER_PROCESS`` per process in flight
for this upload (memory stays a few blocks whatever the file's size), and their outcomes are
merged in the file's order (``FileValidator.absorb``): the rows, the problems, the kept first
ones, the duplicate recipients and the spooled rows are those the service's process alone
would have found.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from credbatch.csvstream import DEFAULT_MAX_RECORD_CHARS
from credbatch.errors import Internal
from services.uploads.blocks import Block, RecordBlocks
from services.uploads.spool import RowSpool
from services.uploads.validation_pool import BlockResult, BlockTask
from services.uploads.validator import AcceptedRow, FileValidator

FIRST_BLOCK_BYTES = 256 * 1024
BLOCK_BYTES = 1024 * 1024
IN_FLIGHT_PER_PROCESS = 2


class BlockValidation(Protocol):
    """What validates blocks: a ``ValidationPool``."""

    processes: int

    async def validate(self, task: BlockTask) -> BlockResult: ...


async def validate_file(
    validator: FileValidator,
    chunks: AsyncIterator[bytes],
    pool: BlockValidation | None,
    spool: RowSpool | None = None,
    *,
    first_block: int = FIRST_BLOCK_BYTES,
    block: int = BLOCK_BYTES,
    hold: int | None = None,
) -> None:
    """Feed the whole file to ``validator`` (then ``validator.report()`` is complete),
    spooling the accepted rows while no problem is found.

    Raises:
        ResourceExhausted: the file is over the row or byte limit, or the spool's bound.
        ValidationUnavailable: the pool could not validate a block.

    When more than ``hold`` bytes (default: a few blocks and the longest record) come with
    no record end to cut a block at (a quote never closed, lines ended by a bare CR), the
    rest of the file is read here, as without a pool, so memory stays bounded.
    """
    if pool is None:
        async for chunk in chunks:
            _spool(validator, validator.feed(chunk), spool)
        _spool(validator, validator.finish(), spool)
        return
    if hold is None:
        hold = 4 * max(block, first_block) + 4 * DEFAULT_MAX_RECORD_CHARS
    await _Blocks(validator, pool, spool).run(chunks, RecordBlocks(block, first_block), hold)


def _spool(validator: FileValidator, rows: Iterable[AcceptedRow], spool: RowSpool | None) -> None:
    for row in rows:
        if spool is not None and not validator.has_errors:
            spool.add(row)


class _Blocks:
    def __init__(
        self, validator: FileValidator, pool: BlockValidation, spool: RowSpool | None
    ) -> None:
        self._validator = validator
        self._pool = pool
        self._spool = spool
        self._header: list[str] | None = None  # set once blocks go to the pool
        self._next_row = 0
        self._in_flight: deque[tuple[int, asyncio.Future[BlockResult]]] = deque()
        self._limit = IN_FLIGHT_PER_PROCESS * pool.processes

    async def run(self, chunks: AsyncIterator[bytes], blocks: RecordBlocks, hold: int) -> None:
        validator = self._validator
        alone = False  # reading the rest here, without blocks
        try:
            async for chunk in chunks:
                validator.count_bytes(len(chunk))
                if alone:
                    _spool(validator, validator.feed_records(chunk), self._spool)
                    continue
                for block in blocks.feed(chunk):
                    await self._take(block, last=False)
                if blocks.held > hold:
                    alone = True
                    await self._read_alone(blocks)
            rest = blocks.finish()
            if rest is not None:
                await self._take(rest, last=True)
            while self._in_flight:
                await self._merge_oldest()
            if self._header is None or alone:
                _spool(self._validator, self._validator.finish(), self._spool)
            else:
                for _ in self._validator.finish():
                    raise Internal("rows left after the file's blocks were merged")
        finally:
            for _, future in self._in_flight:
                future.cancel()

    async def _read_alone(self, blocks: RecordBlocks) -> None:
        """Merge the blocks in flight, then read the bytes held here, and the rest after."""
        while self._in_flight:
            await self._merge_oldest()
        held = blocks.finish()
        validator = self._validator
        if held is None or validator.stopped:
            return
        if self._header is not None:
            validator.read_from(self._next_row, held.byte_offset)
        for piece in held.pieces:
            _spool(validator, validator.feed_records(piece), self._spool)

    async def _take(self, block: Block, *, last: bool) -> None:
        validator = self._validator
        if validator.stopped:
            return  # the file cannot be read further; its bytes are only counted
        if self._header is None:
            for piece in block.pieces:
                _spool(validator, validator.feed_records(piece), self._spool)
            header = validator.header
            if header is not None and not last:
                validator.hold_blank_rows()
                self._header = header
                self._next_row = validator.next_row
            return
        task = BlockTask(
            schema=validator.schema,
            mediums=validator.mediums,
            default_region=validator.default_region,
            keep_errors=validator.keep_errors,
            header=self._header,
            block=block,
            first_row=self._next_row,
            last=last,
            spool=self._spool is not None and not validator.has_errors,
        )
        expected = -1 if last else self._next_row + block.records
        self._in_flight.append((expected, asyncio.ensure_future(self._pool.validate(task))))
        self._next_row = expected
        while len(self._in_flight) >= self._limit:
            await self._merge_oldest()

    async def _merge_oldest(self) -> None:
        expected, future = self._in_flight[0]
        result = await future
        self._in_flight.popleft()
        validator = self._validator
        if validator.stopped:
            return
        outcome = result.outcome
        if expected != -1 and not outcome.stopped and outcome.next_row != expected:
            # The bytes' record count and the reader's disagree: rows would be misnumbered.
            raise Internal("a block's records do not match its rows")
        validator.absorb(outcome)
        if self._spool is not None and not validator.has_errors:
            self._spool.add_lines(result.lines, result.rows)
