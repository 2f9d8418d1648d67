"""An upload's file received ahead of its validation, into a temporary file.

Read at the pace of its validation, a fast client's stream ends only when the last block is
validated, and the records can be stored only after that: the store holds a connection,
which it must never do while a client is still sending. Received here as fast as the client
sends, the stream ends as soon as the client is done, and the store can run while the rest
of the file is validated (``services.uploads.uploader``). A slow client's file is validated
as it arrives, as before.

The bytes wait on disk, not in memory: an anonymous temporary file (deleted when closed, or
by the OS if the process dies) of at most the upload limit and one chunk; past the limit
nothing more is received, and validation refuses the file when it reads that far.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from types import TracebackType

READ_BYTES = 1 << 20


class ReadAhead:
    """Receives a stream of chunks (``start``) and gives them back in order (``chunks``).

    A context manager: leaving it stops the receiving and deletes the file.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        self._received = 0
        self._more = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._file.close()

    def start(self, chunks: AsyncIterator[bytes]) -> None:
        """Receive ``chunks`` in the background from now on."""
        self._task = asyncio.ensure_future(self._receive(chunks))

    @property
    def receiving(self) -> asyncio.Future[None]:
        """Done when the stream ended, whichever way."""
        assert self._task is not None
        return self._task

    @property
    def complete(self) -> bool:
        """The stream ended as its client finished it, within the limit: every byte of the
        file is here (not when it stalled, was malformed or cancelled, or is too large)."""
        return (
            self._task is not None
            and self._task.done()
            and not self._task.cancelled()
            and self._error is None
            and self._received <= self._limit
        )

    async def _receive(self, chunks: AsyncIterator[bytes]) -> None:
        fd = self._file.fileno()
        try:
            async for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                self._received += len(chunk)
                self._more.set()
                if self._received > self._limit:
                    return
        except Exception as error:  # handed to the reader, which raises it in order
            self._error = error
        except asyncio.CancelledError as cancelled:  # the reader raises it too
            self._error = cancelled
            raise
        finally:
            self._more.set()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The received bytes in order as they come; then the stream's own error, if any.

        Raises:
            What the stream raised (its idle timeout, a malformed message), once every byte
            received before it was read.
        """
        assert self._task is not None
        fd = self._file.fileno()
        offset = 0
        while True:
            if offset < self._received:
                data = os.pread(fd, min(READ_BYTES, self._received - offset), offset)
                offset += len(data)
                yield data
                continue
            if self._task.done():
                if self._error is not None:
                    raise self._error
                if self._task.cancelled():
                    raise asyncio.CancelledError
                return
            self._more.clear()
            await self._more.wait()
