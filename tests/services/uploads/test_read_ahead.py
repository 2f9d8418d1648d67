"""ReadAhead and RowSpool.follow: a file received ahead of its validation, and rows read back
while they are still being spooled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from credbatch.errors import DeadlineExceeded
from services.uploads import spool as spool_module
from services.uploads.read_ahead import READ_BYTES, ReadAhead
from services.uploads.spool import RowSpool
from services.uploads.validator import AcceptedRow


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_the_stream_is_received_before_its_reader_asks_and_read_back_in_order() -> None:
    parts = [bytes([i]) * (READ_BYTES // 3 + i) for i in range(7)]
    sent = asyncio.Event()

    async def client() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
        sent.set()

    with ReadAhead(limit=10 * READ_BYTES) as ahead:
        ahead.start(client())
        # Nobody reads yet, and still the whole stream is taken from the client.
        await asyncio.wait_for(sent.wait(), 5)
        await asyncio.wait_for(ahead.receiving, 5)
        assert ahead.complete
        assert await _collect(ahead.chunks()) == b"".join(parts)


async def test_the_reader_follows_a_slow_stream() -> None:
    gate = asyncio.Event()

    async def client() -> AsyncIterator[bytes]:
        yield b"first,"
        await gate.wait()
        yield b"second"

    with ReadAhead(limit=1000) as ahead:
        ahead.start(client())
        reader = aiter(ahead.chunks())
        assert await asyncio.wait_for(anext(reader), 5) == b"first,"
        assert not ahead.complete
        waiting = asyncio.ensure_future(anext(reader))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # it waits for the client, not ends
        gate.set()
        assert await asyncio.wait_for(waiting, 5) == b"second"
        with pytest.raises(StopAsyncIteration):
            await anext(reader)
        assert ahead.complete


async def test_the_streams_error_comes_after_the_bytes_received_before_it() -> None:
    async def client() -> AsyncIterator[bytes]:
        yield b"a,b\r\n"
        raise DeadlineExceeded("stalled", reason="UPLOAD_IDLE_TIMEOUT")

    with ReadAhead(limit=1000) as ahead:
        ahead.start(client())
        reader = aiter(ahead.chunks())
        assert await anext(reader) == b"a,b\r\n"
        with pytest.raises(DeadlineExceeded):
            await anext(reader)
        assert not ahead.complete


async def test_a_stream_cancelled_midway_is_never_read_as_a_whole_file() -> None:
    async def client() -> AsyncIterator[bytes]:
        yield b"a,b\r\n"
        raise asyncio.CancelledError  # what the request iterator raises when the call is gone

    with ReadAhead(limit=1000) as ahead:
        ahead.start(client())
        await asyncio.wait((ahead.receiving,))
        assert not ahead.complete
        reader = aiter(ahead.chunks())
        assert await anext(reader) == b"a,b\r\n"
        with pytest.raises(asyncio.CancelledError):
            await anext(reader)


async def test_nothing_is_received_past_the_limit() -> None:
    received = 0

    async def client() -> AsyncIterator[bytes]:
        nonlocal received
        for _ in range(100):
            received += 10
            yield b"x" * 10

    with ReadAhead(limit=35) as ahead:
        ahead.start(client())
        await asyncio.wait_for(ahead.receiving, 5)
        assert not ahead.complete
        assert received == 40  # the chunk that passed the limit, and no more
        assert await _collect(ahead.chunks()) == b"x" * 40  # the reader sees it is too large


async def test_leaving_stops_the_receiving() -> None:
    async def client() -> AsyncIterator[bytes]:
        yield b"x"
        await asyncio.Event().wait()  # a client that never ends
        yield b"never"  # pragma: no cover

    with ReadAhead(limit=1000) as ahead:
        ahead.start(client())
        await asyncio.sleep(0.01)
        task = ahead.receiving
    await asyncio.sleep(0)
    assert task.cancelled()


def _row(i: int, name: str = "x") -> AcceptedRow:
    return AcceptedRow(i + 2, f"h{i}@x.io", None, {"name": f"{name}{i}"})


async def test_rows_are_read_back_while_more_are_spooled() -> None:
    with RowSpool(["name"], max_bytes=1 << 20) as spool:
        adding: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        read = aiter(spool.follow(adding))
        spool.add(_row(0))
        first = await asyncio.wait_for(anext(read), 5)
        assert (first.row, orjson.loads(first.attributes_json)) == (2, {"name": "x0"})
        waiting = asyncio.ensure_future(anext(read))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # waits for more rows while adding runs
        spool.add(_row(1))
        assert (await asyncio.wait_for(waiting, 5)).row == 3
        spool.add(_row(2))
        adding.set_result(None)
        assert [row.row async for row in read] == [4]


async def test_following_raises_the_adders_error_after_its_rows() -> None:
    with RowSpool(["name"], max_bytes=1 << 20) as spool:
        adding: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        spool.add(_row(0))
        adding.set_exception(ValueError("the file is invalid"))
        read = aiter(spool.follow(adding))
        assert (await anext(read)).row == 2
        with pytest.raises(ValueError, match="invalid"):
            await anext(read)


async def test_following_reads_lines_longer_than_its_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "_FOLLOW_BYTES", 64)
    rows = [_row(i, name="y" * (i * 40)) for i in range(6)]  # lines of ~30 to ~250 bytes
    with RowSpool(["name"], max_bytes=1 << 20) as spool:
        for accepted in rows:
            spool.add(accepted)
        adding: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        adding.set_result(None)
        back = [row async for row in spool.follow(adding)]
        again = list(spool)  # a follower leaves the spool whole for another read
    assert [orjson.loads(row.attributes_json)["name"] for row in back] == [
        accepted.attributes["name"] for accepted in rows
    ]
    assert again == back
