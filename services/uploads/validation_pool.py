"""ValidationPool: processes that validate blocks of an upload's records, one per core.

Started with the uploads service and shared by its uploads: a block (``services.uploads.
blocks``) goes to whichever process is free, with what it needs to validate it alone (the
schema, the mediums, the file's header row and the block's first row), and comes back as its
outcome (counts, the first problems, the recipients' keys) and its accepted rows already
encoded as spool lines. A process keeps nothing between blocks, so any process can take any
block of any upload.

A process that ends (killed, out of memory) breaks the executor: every block in flight fails
with ``BrokenProcessPool``. The first upload to see it replaces the executor (new processes)
and each block in flight is sent again, once, to the new one; a block whose second try breaks
too fails its upload with VALIDATION_UNAVAILABLE, retryable. Nothing is merged from a block
that did not come back, so a death can delay an upload but never corrupt it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from credbatch.errors import Unavailable
from credbatch.schema.model import Medium, SchemaVersion
from services.uploads.blocks import Block
from services.uploads.spool import attribute_positions, encode_row
from services.uploads.validator import BlockOutcome, FileValidator

log = logging.getLogger(__name__)


class ValidationUnavailable(Unavailable):
    """A block's validation process ended twice before answering: a fault of the service
    (the file is not to blame), so the same upload may succeed when sent again."""

    reason = "VALIDATION_UNAVAILABLE"


@dataclass(frozen=True)
class BlockTask:
    """One block and what validating it alone needs."""

    schema: SchemaVersion
    mediums: frozenset[Medium]
    default_region: str
    keep_errors: int
    header: list[str]
    block: Block
    first_row: int
    last: bool  # the file ends with this block
    spool: bool  # encode the accepted rows (an upload that stores, no problem found before)


@dataclass(frozen=True)
class BlockResult:
    outcome: BlockOutcome
    lines: bytes  # the accepted rows as spool lines; empty once the block found a problem
    rows: int


def validate_block(task: BlockTask) -> BlockResult:
    """Validate one block (runs in a pool process; also callable in-process)."""
    validator = FileValidator.for_block(
        task.schema,
        task.mediums,
        task.header,
        task.first_row,
        task.block.byte_offset,
        default_region=task.default_region,
        keep_errors=task.keep_errors,
    )
    positions = attribute_positions([attribute.name for attribute in task.schema.attributes])
    # One buffer, not a list of lines: each of orjson's results holds an allocation of a few
    # KiB whatever its length, so a block's lines kept apart would take tens of times their
    # size.
    lines = bytearray()
    rows = 0
    spool = task.spool
    for piece in task.block.pieces:
        for row in validator.feed_records(piece):
            if spool and not validator.has_errors:
                lines += encode_row(row, positions)
                rows += 1
    for row in validator.end_block(last=task.last):
        if spool and not validator.has_errors:
            lines += encode_row(row, positions)
            rows += 1
    if validator.has_errors:
        return BlockResult(validator.block_outcome(), b"", 0)
    return BlockResult(validator.block_outcome(), bytes(lines), rows)


def _ready() -> bool:
    return True


async def _uncancelled(future: Future[BlockResult]) -> BlockResult:
    """The future's result; cancelling the wait leaves the future itself alone.

    Python 3.11's executor fails a pending future with BrokenProcessPool without checking
    whether it was cancelled, which raises in its manager thread; so a block whose upload
    ended is left to finish (at most a few blocks per upload are in flight).
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[BlockResult] = loop.create_future()

    def settle(done: Future[BlockResult]) -> None:
        if waiter.done():
            return
        if done.cancelled():
            waiter.cancel()
            return
        error = done.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(done.result())

    def wake(done: Future[BlockResult]) -> None:
        # Runs in the executor's thread; the loop may have closed since (its upload ended).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, done)

    future.add_done_callback(wake)
    return await waiter


class ValidationPool:
    """``processes`` validation processes; ``start()`` before use, ``close()`` at the end."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a validation pool needs at least one process")
        self.processes = processes
        self._executor = self._new_executor()
        self._closed = False

    def _new_executor(self) -> ProcessPoolExecutor:
        # Spawned, not forked: the service's process has gRPC's threads running.
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))

    async def start(self) -> None:
        """Start every process (imports take a second or so each) and wait until all are up."""
        executor = self._executor
        await asyncio.gather(
            *(asyncio.wrap_future(executor.submit(_ready)) for _ in range(self.processes))
        )

    async def validate(self, task: BlockTask) -> BlockResult:
        """The block's result, from a live process.

        Raises:
            ValidationUnavailable: the pool is closed, or the block's process ended twice.
        """
        for _ in range(2):
            if self._closed:
                break
            executor = self._executor
            try:
                return await _uncancelled(executor.submit(validate_block, task))
            except BrokenProcessPool:
                self._replace(executor)
        raise ValidationUnavailable(
            "the upload's validation processes ended before answering; send the upload again"
        )

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken and not self._closed:
            log.warning("a validation process ended; starting %d new ones", self.processes)
            self._executor = self._new_executor()
            broken.shutdown(wait=False)

    def pids(self) -> list[int]:
        """The live processes' ids (for tests and diagnostics)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True)
