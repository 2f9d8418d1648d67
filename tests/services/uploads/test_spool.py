"""RowSpool, TenantUploadSlots and idle_limited: the parts of an upload that hold no database."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import orjson
import pytest

from credbatch.errors import DeadlineExceeded, ResourceExhausted
from services.uploads.admission import RETRY_SECONDS, TenantUploadSlots
from services.uploads.idle import idle_limited
from services.uploads.spool import RowSpool
from services.uploads.validator import AcceptedRow


def test_rows_come_back_as_stored_json_in_order_with_absent_attributes_absent() -> None:
    rows = [
        AcceptedRow(2, "a@x.io", None, {"name": "Ada", "born": datetime.date(1990, 5, 17)}),
        AcceptedRow(3, None, "+14155550100", {"score": Decimal("7.5"), "name": "Bob"}),
        AcceptedRow(4, "c@x.io", None, {"score": Decimal("0.1000000000000000000001")}),
    ]
    with RowSpool(["name", "born", "score"], max_bytes=1 << 20) as spool:
        for accepted in rows:
            spool.add(accepted)
        back = list(spool)
    assert [(r.row, r.email, r.phone) for r in back] == [
        (2, "a@x.io", None),
        (3, None, "+14155550100"),
        (4, "c@x.io", None),
    ]
    assert [orjson.loads(r.attributes_json) for r in back] == [
        {"name": "Ada", "born": "1990-05-17"},
        {"name": "Bob", "score": 7.5},
        {"score": "0.1000000000000000000001"},  # no digit lost
    ]


def test_the_spool_is_bounded() -> None:
    with RowSpool(["name"], max_bytes=100) as spool, pytest.raises(ResourceExhausted):
        for i in range(100):
            spool.add(AcceptedRow(i + 2, f"h{i}@x.io", None, {"name": "x" * 10}))


def test_a_tenant_gets_its_cap_of_slots_and_others_are_unaffected() -> None:
    slots = TenantUploadSlots(2)
    a, b = uuid.uuid4(), uuid.uuid4()
    with slots.hold(a), slots.hold(a):
        with pytest.raises(ResourceExhausted) as refused, slots.hold(a):
            pass
        assert refused.value.reason == "TOO_MANY_UPLOADS"
        assert refused.value.retry_delay == RETRY_SECONDS
        with slots.hold(b):
            assert slots.running(b) == 1
    assert slots.running(a) == 0
    with slots.hold(a):
        assert slots.running(a) == 1


async def test_a_stream_that_stalls_ends_with_deadline_exceeded() -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield b"one"
        await asyncio.sleep(10)
        yield b"never"

    received: list[bytes] = []
    with pytest.raises(DeadlineExceeded) as stalled:
        async for message in idle_limited(stalls(), 0.2):
            received.append(message)
    assert received == [b"one"]
    assert stalled.value.reason == "UPLOAD_IDLE_TIMEOUT"

    async def steady() -> AsyncIterator[bytes]:
        for _ in range(5):
            await asyncio.sleep(0.05)
            yield b"x"

    assert [m async for m in idle_limited(steady(), 0.2)] == [b"x"] * 5
