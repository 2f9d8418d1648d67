"""Blocks validated apart and merged give what one process finds: rows, problems, messages,
the kept first problems, duplicates and spooled rows, whatever the file and its chunks."""

from __future__ import annotations

import pickle
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credbatch.csvstream import iter_rows
from credbatch.errors import ResourceExhausted
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from services.uploads.blocks import Block, RecordBlocks
from services.uploads.parallel import BlockValidation, validate_file
from services.uploads.spool import RowSpool
from services.uploads.validation_pool import BlockResult, BlockTask, validate_block
from services.uploads.validator import FileValidator, Report

SCHEMA = SchemaVersion(
    uuid.uuid4(),
    1,
    "Parallel",
    (
        Attribute("name", AttributeType.STRING, required=True),
        Attribute("age", AttributeType.INTEGER),
        Attribute("level", AttributeType.ENUM, enum_values=("Gold", "Silver")),
    ),
)
MEDIUMS = (Medium.EMAIL, Medium.SMS)
HEADER = "email,phone,name,age,level"


class PickledBlocks:
    """Blocks validated by the pool's own function in this process, task and result sent
    through pickle as to a pool process (fast enough for hypothesis)."""

    processes = 2

    def __init__(self) -> None:
        self.blocks = 0

    async def validate(self, task: BlockTask) -> BlockResult:
        self.blocks += 1
        # Our own objects, round-tripped as the pool's queues do.
        result = validate_block(pickle.loads(pickle.dumps(task)))  # noqa: S301
        loaded: BlockResult = pickle.loads(pickle.dumps(result))  # noqa: S301
        return loaded


async def chunked(data: bytes, sizes: Sequence[int]) -> AsyncIterator[bytes]:
    at = 0
    turn = 0
    while at < len(data):
        size = sizes[turn % len(sizes)]
        yield data[at : at + size]
        at += size
        turn += 1


async def outcome(
    data: bytes,
    sizes: Sequence[int],
    pool: BlockValidation | None,
    *,
    keep: int = 5,
    max_rows: int = 1_000_000,
    first_block: int = 64,
    block: int = 48,
    hold: int | None = None,
) -> object:
    """Everything an upload would see: the report and, for a valid file, the spooled rows."""
    validator = FileValidator(
        SCHEMA, MEDIUMS, default_region="GB", max_rows=max_rows, keep_errors=keep
    )
    with RowSpool([a.name for a in SCHEMA.attributes], 1 << 24) as spool:
        try:
            await validate_file(
                validator,
                chunked(data, sizes),
                pool,
                spool,
                first_block=first_block,
                block=block,
                hold=hold,
            )
        except ResourceExhausted as error:
            return ("exhausted", error.reason, error.message)
        report = validator.report()
        return (report, list(spool) if report.valid else None)


async def same(data: bytes, sizes: Sequence[int], **options: Any) -> object:
    pool = PickledBlocks()
    alone = await outcome(data, sizes, None, **options)
    merged = await outcome(data, sizes, pool, **options)
    assert merged == alone
    return alone


def report_of(found: object) -> Report:
    assert isinstance(found, tuple) and isinstance(found[0], Report), found
    return found[0]


def valid_row(i: int) -> str:
    return f"holder{i}@example.com,+4479500{i:05d},Holder {i},{20 + i % 50},Gold"


async def test_a_valid_file_spools_the_same_rows() -> None:
    data = ("\r\n".join([HEADER, *(valid_row(i) for i in range(300))]) + "\r\n").encode()
    found = await same(data, [100, 7, 333])
    report = report_of(found)
    assert report.valid and report.rows_total == 300
    assert isinstance(found, tuple) and [r.row for r in found[1]] == list(range(2, 302))


async def test_problems_across_block_ends() -> None:
    lines = [HEADER]
    for i in range(200):
        if i % 37 == 5:
            lines.append(valid_row(3))  # a duplicate of row 5, in a later block
        elif i % 41 == 7:
            lines.append(valid_row(i) + ",extra")  # ragged
        elif i % 29 == 3:
            lines.append(",,,,")  # blank
        elif i % 31 == 1:
            lines.append(f'holder{i}@example.com,,"Holder\r\nacross ""lines""",1,Gold')
        elif i % 23 == 2:
            lines.append(f"holder{i}@example,+1,,x,Bronze")
        else:
            lines.append(valid_row(i))
    data = b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n\r\n,,\r\n").encode()
    for keep in (3, 1000):
        for sizes in ([1], [50, 3], [4096]):
            report = report_of(await same(data, sizes, keep=keep))
            assert not report.valid
    report = report_of(await same(data, [17], keep=1000))
    codes = {issue.code for issue in report.errors}
    assert {"DUPLICATE_RECIPIENT", "RAGGED_ROW", "BLANK_ROW", "INVALID_EMAIL"} <= codes


async def test_quoted_cells_spanning_a_block_end() -> None:
    # A cell of many lines crosses several block ends; the rows after it keep their numbers.
    cell = '"' + "\n".join(f'line {i} with "" and ,' for i in range(40)) + '"'
    lines = [HEADER, valid_row(1), f"holder2@example.com,,{cell},3,Gold", valid_row(3)]
    lines += [valid_row(3), f"bad,{cell},x,y,z"]
    data = ("\n".join(lines) + "\n").encode()
    report = report_of(await same(data, [64, 1, 5], first_block=16, block=16))
    found = {(issue.row, issue.code) for issue in report.errors}
    assert {(5, "DUPLICATE_RECIPIENT"), (6, "INVALID_EMAIL")} <= found


async def test_stops_where_one_process_stops() -> None:
    body = "\n".join([HEADER, *(valid_row(i) for i in range(60))]).encode()
    for broken in (
        body + b"\nx\xff,y\n" + body,  # not UTF-8 in a later block
        body + b'\n"never closed,\n' + body,  # an unclosed quote to the end
        b"\xff\xfe" + body,  # UTF-16
        body[:200] + b"\r" + body[200:],  # a bare CR
    ):
        await same(broken, [33])
        await same(broken, [1000])
        await same(broken, [33], hold=100)  # the rest read in-process past 100 bytes uncut


async def test_row_limit_across_blocks() -> None:
    data = ("\n".join([HEADER, *(valid_row(i) for i in range(100))]) + "\n").encode()
    assert await same(data, [40], max_rows=99) == (
        "exhausted",
        "TOO_MANY_ROWS",
        "the file has more than 99 data rows, the limit; split it into several batches",
    )
    await same(data, [40], max_rows=100)


async def test_a_small_file_stays_in_process() -> None:
    pool = PickledBlocks()
    data = ("\n".join([HEADER, *(valid_row(i) for i in range(30))]) + "\n").encode()
    await outcome(data, [7], pool, first_block=len(data))
    assert pool.blocks == 0
    await outcome(data, [7], pool, first_block=len(data) // 4)
    assert pool.blocks > 0


_cell = st.text(alphabet=st.sampled_from(list('a1@.,"\r\n +\u00e9')), max_size=6)
_line = st.one_of(
    st.integers(0, 10_000).map(valid_row),
    st.integers(0, 5).map(valid_row),  # duplicates
    st.lists(_cell, max_size=7).map(",".join),
    st.sampled_from(["", ",,,,", " , ", '"a\nb",1', '"', 'x"y,"z""', "\r"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_line, max_size=40),
    ends=st.sampled_from(["\n", "\r\n", "\r"]),
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\n", b",,\n"]),
    sizes=st.lists(st.integers(1, 90), min_size=1, max_size=4),
    block=st.integers(1, 120),
    keep=st.integers(1, 6),
    hold=st.none() | st.integers(1, 300),
)
async def test_any_file(
    lines: list[str],
    ends: str,
    prefix: bytes,
    sizes: list[int],
    block: int,
    keep: int,
    hold: int | None,
) -> None:
    data = prefix + ends.join([HEADER, *lines]).encode()
    await same(data, sizes, keep=keep, first_block=block, block=block, hold=hold)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=200)
    | st.text(alphabet=st.sampled_from(list('ab,"\r\n')), max_size=200).map(str.encode),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    block=st.integers(1, 50),
)
def test_blocks_hold_the_records_the_reader_reads(
    data: bytes, sizes: list[int], block: int
) -> None:
    """Each cut block's record count is what the reader counts in it (the merge relies on it)."""
    splitter = RecordBlocks(block)
    blocks = []
    at = 0
    turn = 0
    while at < len(data):
        size = sizes[turn % len(sizes)]
        blocks.extend(splitter.feed(data[at : at + size]))
        at += size
        turn += 1
    rest = splitter.finish()
    assert b"".join(b"".join(b.pieces) for b in [*blocks, *([rest] if rest else [])]) == data
    try:
        rows = [row for row, _ in iter_rows([data])]
    except Exception:
        return  # not readable as a whole: the reader stops, the count is moot
    del rows
    for cut in blocks:
        assert b"".join(cut.pieces).endswith(b"\n")
    ends = 0
    for cut in blocks:
        ends += len(b"".join(cut.pieces))
        # The reader, fed the file up to this cut and finished, has counted its records.
        reader_rows = _records(data[:ends])
        assert reader_rows == sum(b.records for b in blocks[: blocks.index(cut) + 1])


def _records(data: bytes) -> int:
    from credbatch.csvstream import CsvStreamReader

    reader = CsvStreamReader()
    for _ in reader.feed(data):
        pass
    for _ in reader.finish():
        pass
    return reader.next_row - 1


def test_a_blocks_spool_lines_take_about_their_own_size() -> None:
    # What validating a block holds at its peak is a few times the block (its recipients'
    # keys, its rows as spool lines), not an allocation per row many times the row's size.
    count = 12_000
    data = ("\r\n".join(valid_row(i) for i in range(count)) + "\r\n").encode()
    task = BlockTask(
        schema=SCHEMA,
        mediums=frozenset(MEDIUMS),
        default_region="GB",
        keep_errors=5,
        header=HEADER.split(","),
        block=Block((data,), len(HEADER) + 2, count),
        first_row=2,
        last=False,
        spool=True,
    )
    validate_block(task)  # what the first block loads once (phone metadata) is not counted
    tracemalloc.start()
    try:
        result = validate_block(task)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.rows == count
    print(peak / len(data))
    assert peak < 10 * len(data)
