"""An upload stream that ends when its client stops sending.

A client that sends a chunk and then nothing would otherwise keep its upload (a stream, a
tenant slot, a spool file) until the connection dies. Each message must arrive within the
idle timeout of the one before it; a stalled upload ends with DEADLINE_EXCEEDED, which is
the server's deadline passing (CANCELLED would say the client gave up, which it did not),
and creates nothing: rows are only written once the stream has ended normally.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from credbatch.errors import DeadlineExceeded

T = TypeVar("T")

UPLOAD_IDLE_TIMEOUT = "UPLOAD_IDLE_TIMEOUT"


async def idle_limited(messages: AsyncIterator[T], seconds: float) -> AsyncIterator[T]:
    """``messages`` as they come, failing when one takes longer than ``seconds``.

    Raises:
        DeadlineExceeded: no message for ``seconds``.
    """
    source = aiter(messages)
    while True:
        try:
            # asyncio.timeout, not wait_for: wait_for (before Python 3.12) runs the wait in a
            # task of its own, a task and an event loop turn more for every message.
            async with asyncio.timeout(seconds):
                message = await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise DeadlineExceeded(
                f"the upload stalled: nothing received for {seconds:g} seconds; nothing was "
                "created, send the file again",
                reason=UPLOAD_IDLE_TIMEOUT,
                metadata={"idle_timeout_seconds": f"{seconds:g}"},
            ) from None
        yield message
