"""SMTP sink (aiosmtpd): stores every accepted message as an .eml file.

Failure hooks for tests: ``refuse`` maps recipients to a permanent 550 reply,
``temporary_failure`` answers 451 to every recipient, and ``stop()`` / ``start()`` take the
server down and bring it back on the same port.

Run: ``python -m credbatch.devsinks.smtp --port 1025 --dir .local/mail``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class SinkHandler:
    """aiosmtpd handler: writes each message to ``directory`` and keeps it in memory."""

    def __init__(self, directory: Path | None, *, keep: bool = True) -> None:
        self.directory = directory
        self.keep = keep
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.temporary_failure = False
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.temporary_failure:
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        reason = self.refuse.get(address.lower())
        if reason is not None:
            return f"550 5.1.1 {reason}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if self.directory is not None:
            path = self.directory / f"{uuid.uuid4().hex}.eml"
            # Synchronous: a small local write is cheaper than a thread hand-off.
            path.write_bytes(content)
        if self.keep:
            self.messages.append((list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP sink on the current event loop (port 0 picks a free port)."""

    def __init__(
        self,
        directory: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keep: bool = True,
    ) -> None:
        self.handler = SinkHandler(directory, keep=keep)
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    @property
    def messages(self) -> list[tuple[list[str], bytes]]:
        return self.handler.messages

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.handler, hostname="credbatch-sink", data_size_limit=10 << 20),
            self.host,
            self.port,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop open sessions (clients see their connections reset)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(AttributeError):
                server.close_clients()  # type: ignore[attr-defined]  # Python 3.13+
            await server.wait_closed()

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


async def _main(host: str, port: int, directory: Path) -> None:
    sink = SmtpSink(directory, host, port, keep=False)
    await sink.start()
    print(f"SMTP sink listening on {host}:{sink.port}, storing into {directory}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink storing .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"))
    args = parser.parse_args()
    asyncio.run(_main(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
