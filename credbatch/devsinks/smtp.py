"""SMTP sink (aiosmtpd): stores every accepted message as an .eml file.

It offers PIPELINING, as the relays a deployment sends to do.

Failure hooks for tests: ``refuse`` maps recipients to a permanent 550 reply,
``temporary_failure`` answers 451 to every recipient, and ``stop()`` / ``start()`` take the
server down and bring it back on the same port.

Bounces after acceptance, as a real relay's next hop produces them: a message to a recipient
matching one of ``bounce_patterns`` (shell patterns such as ``*@bounce.example``, from
``CREDBATCH_DEV_BOUNCE_PATTERN``, comma-separated) is accepted, then an RFC 3464 report of a
hard bounce (5.1.1) is sent to its envelope sender through ``report_to`` (host, port: the
bounce receiver). With ``receipts`` every other message gets a delivery report (2.0.0), as
a relay asked for NOTIFY=SUCCESS would send. Reports go only to envelope senders of the
bounce domain the sink is given (``bounce_domain``), never anywhere else. ``on_report`` is
told of each report as it is made (``bench/delivery_funnel.py`` times them from there).

Run: ``python -m credbatch.devsinks.smtp --port 1025 --dir .local/mail``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import logging
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from credbatch.devsinks.dsn import build_dsn, send_dsn

log = logging.getLogger(__name__)
BOUNCE_PATTERN_VARIABLE = "CREDBATCH_DEV_BOUNCE_PATTERN"


def bounce_patterns(value: str | None) -> tuple[str, ...]:
    """The lower-cased patterns of a comma-separated list (empty: none)."""
    return tuple(p.strip().lower() for p in (value or "").split(",") if p.strip())


def with_pipelining(responses: list[str]) -> list[str]:
    """aiosmtpd's EHLO reply lines with PIPELINING offered (RFC 2920). aiosmtpd reads each
    command off a buffered stream and answers in order, so it serves pipelined commands; it
    only does not say so."""
    return [*responses[:-1], "250-PIPELINING", responses[-1]]


class SinkHandler:
    """aiosmtpd handler: writes each message to ``directory`` and keeps it in memory."""

    def __init__(self, directory: Path | None, *, keep: bool = True) -> None:
        self.directory = directory
        self.keep = keep
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.temporary_failure = False
        self.bounce_patterns: tuple[str, ...] = ()
        self.bounce_domain: str | None = None
        self.report_to: tuple[str, int] | None = None
        self.receipts = False
        # Reports being sent, and how many were handed to the receiver.
        self.reports: set[asyncio.Task[None]] = set()
        self.reports_sent = 0
        # Told (recipient, action) as each report is made, before it is sent: when the
        # sink produced a bounce, for a measure of how long until its record shows it.
        self.on_report: Callable[[str, str], None] | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves it to an EHLO hook
        return with_pipelining(responses)

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
        self._report(envelope, content)
        return "250 Message accepted for delivery"

    def bounces(self, address: str) -> bool:
        """Whether a message to ``address`` bounces after acceptance."""
        return any(fnmatch.fnmatchcase(address.lower(), p) for p in self.bounce_patterns)

    def _report(self, envelope: Envelope, content: bytes) -> None:
        sender = envelope.mail_from or ""
        if self.report_to is None or self.bounce_domain is None:
            return
        if sender.rpartition("@")[2].lower() != self.bounce_domain:
            return
        for recipient in envelope.rcpt_tos:
            if self.bounces(recipient):
                action, status = "failed", "5.1.1"
                diagnostic = f"smtp; 550 5.1.1 <{recipient}>: Recipient address rejected"
            elif self.receipts:
                action, status, diagnostic = "delivered", "2.0.0", "smtp; 250 2.0.0 Ok"
            else:
                continue
            data = build_dsn(
                reporting_mta="credbatch-sink",
                sender=sender,
                recipient=recipient,
                action=action,
                status=status,
                diagnostic=diagnostic,
                original=content,
            )
            if self.on_report is not None:
                self.on_report(recipient, action)
            task = asyncio.create_task(self._send_report(sender, data))
            self.reports.add(task)
            task.add_done_callback(self.reports.discard)

    async def _send_report(self, to: str, data: bytes) -> None:
        assert self.report_to is not None
        host, port = self.report_to
        # A relay keeps a report it could not hand over and tries again; a few times here.
        for pause in (0.2, 1.0, 2.0, None):
            try:
                await send_dsn(host, port, to, data)
            except (aiosmtplib.SMTPException, OSError) as error:
                if pause is None:
                    log.warning("report not delivered to the bounce receiver: %s", error)
                    return
                await asyncio.sleep(pause)
            else:
                self.reports_sent += 1
                return


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


async def _main(
    host: str,
    port: int,
    directory: Path,
    report_to: tuple[str, int] | None,
    bounce_domain: str | None,
    receipts: bool,
) -> None:
    sink = SmtpSink(directory, host, port, keep=False)
    sink.handler.bounce_patterns = bounce_patterns(os.environ.get(BOUNCE_PATTERN_VARIABLE))
    sink.handler.report_to = report_to
    sink.handler.bounce_domain = bounce_domain
    sink.handler.receipts = receipts
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
    parser.add_argument(
        "--report-to",
        help="host:port of the bounce receiver, where bounces and receipts go "
        f"(bounces: recipients matching {BOUNCE_PATTERN_VARIABLE})",
    )
    parser.add_argument("--bounce-domain", help="the bounce domain of envelope senders")
    parser.add_argument(
        "--receipts", action="store_true", help="send a delivery report for every other message"
    )
    args = parser.parse_args()
    report_to = None
    if args.report_to:
        report_host, _, report_port = args.report_to.rpartition(":")
        report_to = (report_host, int(report_port))
    bounce_domain = args.bounce_domain.lower() if args.bounce_domain else None
    asyncio.run(_main(args.host, args.port, args.dir, report_to, bounce_domain, args.receipts))


if __name__ == "__main__":
    main()
