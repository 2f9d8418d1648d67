"""The validation pool's real processes: same outcome as one process, and a process killed
mid-upload neither loses nor corrupts the upload, and is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest

from services.uploads.validation_pool import ValidationPool, ValidationUnavailable
from tests.services.uploads.test_parallel import (
    HEADER,
    PickledBlocks,
    outcome,
    report_of,
    valid_row,
)

BLOCK = 4096


def _file(rows: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        if i % 997 == 10:
            lines.append(valid_row(i - 1))  # a duplicate, often in another block
        elif i % 1013 == 5:
            lines.append(f'holder{i}@example.com,,"two\nlines",x,Gold')
        else:
            lines.append(valid_row(i))
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def pool() -> Iterator[ValidationPool]:
    validation = ValidationPool(2)
    yield validation
    validation.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_the_pool_finds_what_one_process_finds(pool: ValidationPool) -> None:
    await pool.start()
    data = _file(3000)
    alone = await outcome(data, [8192], None, keep=50, first_block=BLOCK, block=BLOCK)
    pooled = await outcome(data, [8192], pool, keep=50, first_block=BLOCK, block=BLOCK)
    assert pooled == alone
    assert report_of(alone).error_count > 0


async def test_a_process_killed_mid_upload_is_replaced(pool: ValidationPool) -> None:
    await pool.start()
    data = _file(20_000)
    expected = await outcome(data, [8192], PickledBlocks(), first_block=BLOCK, block=BLOCK)
    first = pool.pids()
    assert len(first) == 2

    killed: list[int] = []

    async def chunks_then_kill() -> AsyncIterator[bytes]:
        for at in range(0, len(data), 8192):
            if at == 8192 * 8:
                # Blocks are in flight now: one of their processes dies.
                killed.append(pool.pids()[0])
                os.kill(killed[0], signal.SIGKILL)
            yield data[at : at + 8192]

    from services.uploads import parallel
    from services.uploads.spool import RowSpool
    from services.uploads.validator import FileValidator
    from tests.services.uploads.test_parallel import MEDIUMS, SCHEMA

    validator = FileValidator(SCHEMA, MEDIUMS, default_region="GB", keep_errors=5)
    with RowSpool([a.name for a in SCHEMA.attributes], 1 << 24) as spool:
        await parallel.validate_file(
            validator, chunks_then_kill(), pool, spool, first_block=BLOCK, block=BLOCK
        )
        report = validator.report()
        assert (report, list(spool) if report.valid else None) == expected
    assert killed and not _alive(killed[0])
    replaced = pool.pids()
    assert len(replaced) == 2 and killed[0] not in replaced
    assert all(_alive(pid) for pid in replaced)
    again = await outcome(data, [8192], pool, first_block=BLOCK, block=BLOCK)
    assert again == expected


async def test_processes_that_keep_dying_fail_the_upload_retryably(pool: ValidationPool) -> None:
    await pool.start()
    data = _file(20_000)
    expected = await outcome(data, [8192], None, first_block=BLOCK, block=BLOCK)

    async def kill_every_process() -> None:
        while True:
            for pid in pool.pids():
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.01)

    killer = asyncio.ensure_future(kill_every_process())
    outcomes = []
    try:
        for _ in range(3):
            try:
                outcomes.append(await outcome(data, [8192], pool, first_block=BLOCK, block=BLOCK))
            except ValidationUnavailable as error:
                assert error.retryable and error.reason == "VALIDATION_UNAVAILABLE"
                outcomes.append(None)
    finally:
        killer.cancel()
    # Either the right outcome or a retryable refusal: never a wrong report. (Which of the
    # two depends on where the kills land; usually a block's second try dies too.)
    assert all(found in (expected, None) for found in outcomes)
    await asyncio.sleep(0.5)
    assert await outcome(data, [8192], pool, first_block=BLOCK, block=BLOCK) == expected


async def test_a_closed_pool_refuses_retryably(pool: ValidationPool) -> None:
    await pool.start()
    pool.close()
    with pytest.raises(ValidationUnavailable) as refused:
        await outcome(_file(3000), [8192], pool, first_block=BLOCK, block=BLOCK)
    assert refused.value.retryable
