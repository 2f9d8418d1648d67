"""What a render process sends back is parsed, never unpickled, and anything else refused."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from credbatch.templating.problems import TemplateProblem
from credbatch.templating.runner.wire import (
    MAX_HEADER,
    ProtocolError,
    decode_result,
    read_frame,
    result_frame,
)


async def _decoded(frame: bytes) -> object:
    reader = asyncio.StreamReader()
    reader.feed_data(frame)
    reader.feed_eof()
    header, payload = await read_frame(reader)
    return decode_result(header, payload)


@pytest.mark.parametrize(
    "result",
    [("Hello Ann", "<p>é 😀</p>", ""), b"%PDF-1.4 ...", TemplateProblem("TEMPLATE_UNSAFE", "no")],
)
async def test_every_result_survives_the_trip(result: object) -> None:
    assert isinstance(result, tuple | bytes | TemplateProblem)
    decoded = await _decoded(result_frame(result))
    if isinstance(result, TemplateProblem):
        assert isinstance(decoded, TemplateProblem)
        assert (decoded.code, decoded.message) == (result.code, result.message)
    else:
        assert decoded == result


def _frame(header: object, payload: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack(">II", len(encoded), len(payload)) + encoded + payload


@pytest.mark.parametrize(
    "frame",
    [
        _frame({"texts": [5]}, b"abc"),  # lengths do not add up
        _frame({"texts": [-1]}, b""),
        _frame({"texts": ["3"]}, b"abc"),
        _frame({"pdf": 10}, b"%PDF"),
        _frame({"code": "lower case", "message": "x"}),
        _frame({"code": "TEMPLATE_UNSAFE", "message": 5}),
        _frame({"code": "TEMPLATE_UNSAFE", "message": "x"}, b"extra"),
        _frame({"texts": [], "pdf": 0}),
        _frame(["not", "an", "object"]),
        _frame({"__reduce__": "os.system"}),
        struct.pack(">II", 5, 0) + b"\x80\x04K\x01.",  # a pickle is not JSON
        struct.pack(">II", MAX_HEADER + 1, 0),
    ],
)
async def test_malformed_answers_are_refused(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        await _decoded(frame)


async def test_a_process_that_ends_mid_frame_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        await _decoded(result_frame(("Hello",))[:-2])
