"""The SMTP conversation of the bounce receiver (an aiosmtpd handler).

What it accepts, and why each refusal is where it is:

- RCPT: only VERP addresses of the bounce domain whose MAC checks (``credbatch.delivery.verp``:
  each names one send of one record's invitation).
  Anything else is refused there (550), before any data is read: the receiver relays
  nothing, and a forged address costs its sender one round trip and us one HMAC. At most
  ``MAX_RECIPIENTS`` per message, as a report names one.
- DATA: at most ``max_bytes`` (announced with SIZE; aiosmtpd stops reading past it and
  answers 552), parsed with the standard library (``credbatch.delivery.dsn``), then recorded
  for each recipient's send before the reply (with the other reports arriving meanwhile,
  in one commit: ``services.bounces.repository``). So "250" means recorded, and a database
  that cannot take it gets "451": the sending system keeps the bounce and tries again later, and
  nothing is lost between the two. A message that is no report (an automatic reply, spam)
  is accepted and dropped, telling its sender nothing.

The handler keeps no state between messages: any number of receivers may serve one domain
(several MX hosts, or replicas behind one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session

from credbatch.delivery import verp
from credbatch.delivery.dsn import Report, parse
from credbatch.metrics import BOUNCE_DURATION, BOUNCE_NOTIFICATIONS
from services.bounces.repository import Outcome, ReportWriter

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10

Recorder = Callable[[verp.Send, Report], Awaitable[Outcome]]


class BounceHandler:
    """Accepts reports for VERP addresses of ``domain`` and records them through ``record``."""

    def __init__(self, key: bytes, domain: str, record: Recorder) -> None:
        self._key = key
        self._domain = domain
        self._record = record
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def on_pool(cls, key: bytes, domain: str, pool: asyncpg.Pool) -> BounceHandler:
        """A handler writing through ``pool`` in groups (``ReportWriter``)."""
        return cls(key, domain, ReportWriter(pool).record)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        host = address.rpartition("@")[2].lower().rstrip(".")
        if host != self._domain:
            _count("refused", "relay")
            return "550 5.7.1 Relaying denied: this server takes bounces for its domain only"
        if verp.send_of(self._key, self._domain, address) is None:
            _count("refused", "token")
            return "550 5.1.1 No such bounce address"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.perf_counter()
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._data(envelope)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
            BOUNCE_DURATION.record(time.perf_counter() - started)

    async def drained(self) -> None:
        """Returns once no message is being recorded (for a graceful stop)."""
        await self._idle.wait()

    async def _data(self, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        report = parse(content)
        if report is None:
            _count("ignored", "not_a_report")
            return "250 2.0.0 Accepted"
        sends = [verp.send_of(self._key, self._domain, r) for r in envelope.rcpt_tos]
        try:
            outcomes = await asyncio.gather(
                *(self._record(send, report) for send in sends if send is not None)
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("recording a bounce failed: %s", type(error).__name__)
            _count("retry", "database")
            return "451 4.3.0 Temporary failure, try again later"
        for outcome in outcomes:
            _count(report.state.value.lower(), outcome)
        return "250 2.0.0 Recorded"


def _count(kind: str, outcome: str) -> None:
    BOUNCE_NOTIFICATIONS.add(
        1,
        {
            "credbatch.bounce.channel": "email",
            "credbatch.bounce.kind": kind,
            "credbatch.bounce.outcome": outcome,
        },
    )
