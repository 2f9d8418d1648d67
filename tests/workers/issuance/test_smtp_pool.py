"""The SMTP pool's transaction against a real server that refuses at each step.

The pool sends MAIL, RCPT and DATA itself (not aiosmtplib's ``sendmail``): these tests pin
what it puts on the wire and how each refusal is classified and recovered from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as ServerEnvelope

from workers.issuance.delivery.email import Envelope, SmtpPool
from workers.issuance.outcomes import IssuanceFailure


@dataclass
class Scripted:
    """Answers each step from its script (None: accept), records what it accepted."""

    mail: str | None = None
    rcpt: str | None = None
    data: str | None = None
    mail_options: list[list[str]] = field(default_factory=list)
    accepted: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    sessions: set[int] = field(default_factory=set)
    helo_only: bool = False

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: ServerEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        self.sessions.add(id(session))
        self.mail_options.append(options)
        if self.mail is not None:
            return self.mail
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: ServerEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if self.rcpt is not None:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: ServerEnvelope) -> str:
        if self.data is not None:
            return self.data
        assert envelope.mail_from is not None and isinstance(envelope.original_content, bytes)
        content = envelope.original_content
        self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 Queued"


class WithoutEsmtp(SMTP):
    """A server that knows HELO only."""

    async def smtp_EHLO(self, hostname: str) -> None:
        await self.push("502 5.5.1 EHLO not implemented")


@pytest.fixture(params=[SMTP, WithoutEsmtp])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Scripted, SmtpPool]]:
    """A scripted server of each kind, and a pool of one connection to it."""
    kind: type[SMTP] = request.param
    handler = Scripted(helo_only=kind is WithoutEsmtp)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: kind(handler, hostname="sink.test"), "127.0.0.1", 0)
    pool = SmtpPool("127.0.0.1", listener.sockets[0].getsockname()[1], 1)
    try:
        yield handler, pool
    finally:
        await pool.close()
        listener.close()
        await listener.wait_closed()


DATA = (
    b"From: issuer@example.org\r\nTo: holder@example.org\r\nSubject: hi\r\n\r\n"
    b"first line\r\n.a line that starts with a dot\r\n..two dots\r\nlast line\r\n"
)


def _envelope(recipient: str = "holder@example.org") -> Envelope:
    return Envelope("bounces+abc@example.org", recipient, DATA)


async def _failure(pool: SmtpPool, envelope: Envelope) -> IssuanceFailure:
    with pytest.raises(IssuanceFailure) as caught:
        await pool.send(envelope)
    return caught.value


async def test_the_message_arrives_byte_for_byte_with_its_envelope_and_size(
    server: tuple[Scripted, SmtpPool],
) -> None:
    handler, pool = server
    await pool.send(_envelope())
    await pool.send(_envelope("second@example.org"))
    assert handler.accepted == [
        ("bounces+abc@example.org", ["holder@example.org"], DATA),
        ("bounces+abc@example.org", ["second@example.org"], DATA),
    ]
    # SIZE is declared where the server offers it (EHLO), never to a HELO-only server.
    size = [] if handler.helo_only else [f"SIZE={len(DATA)}"]
    assert handler.mail_options == [size] * 2
    assert len(handler.sessions) == 1  # one connection, reused


async def test_a_refused_recipient_is_permanent_and_the_connection_goes_on(
    server: tuple[Scripted, SmtpPool],
) -> None:
    handler, pool = server
    handler.rcpt = "550 5.1.1 No such user"
    failure = await _failure(pool, _envelope())
    assert (failure.code, failure.transient) == ("SMTP_REJECTED", False)
    assert "550" in failure.message
    handler.rcpt = None
    await pool.send(_envelope())
    assert len(handler.accepted) == 1
    assert len(handler.sessions) == 1  # reset, not reconnected


async def test_a_throttled_sender_is_a_throttle_and_the_next_send_reconnects(
    server: tuple[Scripted, SmtpPool],
) -> None:
    handler, pool = server
    handler.mail = "451 4.7.1 Too many messages, slow down"
    failure = await _failure(pool, _envelope())
    assert failure.code == "SMTP_THROTTLED" and failure.throttle is not None
    handler.mail = None
    await pool.send(_envelope())
    assert len(handler.accepted) == 1
    assert len(handler.sessions) == 2


async def test_a_temporary_recipient_failure_is_transient(
    server: tuple[Scripted, SmtpPool],
) -> None:
    handler, pool = server
    handler.rcpt = "452 4.2.2 Mailbox full"
    failure = await _failure(pool, _envelope())
    assert (failure.code, failure.transient, failure.throttle) == (
        "SMTP_TEMPORARY_FAILURE",
        True,
        None,
    )


async def test_refused_data_is_permanent(server: tuple[Scripted, SmtpPool]) -> None:
    handler, pool = server
    handler.data = "554 5.6.0 Message content rejected"
    failure = await _failure(pool, _envelope())
    handler.data = None
    await pool.send(_envelope())
    assert (failure.code, failure.transient) == ("SMTP_REJECTED", False)
    assert len(handler.accepted) == 1
