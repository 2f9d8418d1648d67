"""The SMTP pool's transaction against a real server that refuses at each step.

The pool sends MAIL, RCPT and DATA itself (not aiosmtplib's ``sendmail``), pipelined where the
server offers PIPELINING: these tests pin what it puts on the wire and how each refusal is
classified and recovered from, on servers with and without PIPELINING and without ESMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvloop
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as ServerEnvelope

from credbatch.devsinks.smtp import SmtpSink, with_pipelining
from workers.issuance.delivery.email import Envelope, SmtpPool
from workers.issuance.delivery.smtp_session import dot_stuffed
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
    pipelining: bool = False

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: ServerEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return with_pipelining(responses) if self.pipelining else responses

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


@pytest.fixture(params=["esmtp", "pipelining", "helo"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Scripted, SmtpPool]]:
    """A scripted server of each kind, and a pool of one connection to it."""
    kind: type[SMTP] = WithoutEsmtp if request.param == "helo" else SMTP
    handler = Scripted(helo_only=kind is WithoutEsmtp, pipelining=request.param == "pipelining")
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


@pytest.mark.parametrize(
    ("data", "stuffed"),
    [
        (b".starts\r\nwith a dot\r\n", b"..starts\r\nwith a dot\r\n"),
        (b"a\r\n.\r\n..\r\nb.c\r\n", b"a\r\n..\r\n...\r\nb.c\r\n"),
        (b"no dot at a line's start. here\r\n", b"no dot at a line's start. here\r\n"),
        (b".", b".."),
        (b"", b""),
    ],
)
def test_every_line_that_starts_with_a_dot_gets_one_more(data: bytes, stuffed: bytes) -> None:
    assert dot_stuffed(data) == stuffed


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


class Raw:
    """A server written line by line: the replies go out only once ``expect`` lines of a
    transaction arrived, in the chunks given (so several replies can share one segment, and
    one reply can be split over two)."""

    def __init__(self, ehlo: list[str], expect: int, replies: list[bytes]) -> None:
        self.ehlo, self.expect, self.replies = ehlo, expect, replies
        self.commands: list[bytes] = []
        self.message = b""
        self.after: list[bytes] = []  # lines after the message: RSET, QUIT

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._script(reader, writer)
        finally:
            writer.close()

    async def _script(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 raw.test ESMTP\r\n")
        await reader.readline()  # EHLO
        writer.write("".join(f"{line}\r\n" for line in self.ehlo).encode())
        while len(self.commands) < self.expect:
            self.commands.append(await reader.readline())
        for chunk in self.replies:
            if chunk == b"CLOSE":
                return
            if chunk == b"DATA":
                while (line := await reader.readline()) != b".\r\n":
                    self.message += line
                self.message += line
                continue
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while line := await reader.readline():
                self.after.append(line)
                writer.write(b"250 OK\r\n" if line == b"RSET\r\n" else b"221 Bye\r\n")
                await writer.drain()


@contextlib.asynccontextmanager
async def raw_server(raw: Raw) -> AsyncIterator[SmtpPool]:
    listener = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
    pool = SmtpPool("127.0.0.1", listener.sockets[0].getsockname()[1], 1, timeout=2.0)
    try:
        yield pool
    finally:
        await pool.close()
        listener.close()
        await listener.wait_closed()


PIPELINING = ["250-raw.test", "250-PIPELINING", "250 SIZE 100000"]


async def test_pipelined_commands_are_sent_before_any_reply() -> None:
    # The server answers nothing until MAIL, RCPT and DATA are all in: a client waiting for
    # MAIL's reply first would time out. The three replies come in one segment, MAIL's split
    # over two lines of a multi-line reply.
    raw = Raw(
        PIPELINING,
        expect=3,
        replies=[b"250-Sender\r\n250 OK\r\n250 OK\r\n354 Go ahead\r\n", b"DATA", b"250 Queued\r\n"],
    )
    async with raw_server(raw) as pool:
        await pool.send(_envelope())
    assert raw.commands == [
        f"MAIL FROM:<bounces+abc@example.org> SIZE={len(DATA)}\r\n".encode(),
        b"RCPT TO:<holder@example.org>\r\n",
        b"DATA\r\n",
    ]
    assert raw.message == DATA.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def test_a_reply_split_over_segments_is_read_whole() -> None:
    raw = Raw(
        PIPELINING,
        expect=3,
        replies=[b"250-Sen", b"der\r\n250 O", b"K\r\n250 OK\r\n354 Go\r\n", b"DATA", b"250 Q\r\n"],
    )
    async with raw_server(raw) as pool:
        await pool.send(_envelope())
    assert raw.message.endswith(b".\r\n")


async def test_data_accepted_after_a_refused_recipient_is_ended_and_the_recipient_refused() -> None:
    # RFC 2920 lets a server accept DATA after refusing every recipient: the client sends the
    # lone dot, and the recipient's refusal is what counts.
    raw = Raw(
        PIPELINING,
        expect=3,
        replies=[
            b"250 OK\r\n550 5.1.1 No such user\r\n354 Go\r\n",
            b"DATA",
            b"554 No recipients\r\n",
        ],
    )
    async with raw_server(raw) as pool:
        failure = await _failure(pool, _envelope())
        assert (failure.code, failure.transient) == ("SMTP_REJECTED", False)
        assert "550 5.1.1 No such user" in failure.message
        assert raw.message == b".\r\n"
        await asyncio.sleep(0.05)
    assert raw.after[:1] == [b"RSET\r\n"]  # the connection went on, reset


@pytest.mark.parametrize("ehlo", [PIPELINING, ["250-raw.test", "250 SIZE 100000"]])
async def test_a_refusal_followed_by_a_hang_up_is_classified_by_the_refusal(
    ehlo: list[str],
) -> None:
    expect = 3 if "250-PIPELINING" in ehlo else 1
    raw = Raw(
        ehlo, expect=expect, replies=[b"421 4.7.0 Too many connections, try later\r\n", b"CLOSE"]
    )
    async with raw_server(raw) as pool:
        failure = await _failure(pool, _envelope())
    assert failure.code == "SMTP_THROTTLED" and failure.throttle is not None


async def test_a_server_that_never_answers_times_out() -> None:
    raw = Raw(PIPELINING, expect=4, replies=[])  # waits for a fourth line that never comes
    async with raw_server(raw) as pool:
        failure = await _failure(pool, _envelope())
    assert (failure.code, failure.transient) == ("SMTP_TIMEOUT", True)


def test_pipelined_sends_on_uvloop_as_the_worker_runs_them() -> None:
    # The worker runs on uvloop, whose transports are not asyncio's classes.
    async def send_three() -> list[tuple[list[str], bytes]]:
        async with SmtpSink() as sink:
            pool = SmtpPool("127.0.0.1", sink.port, 1, timeout=5.0)
            try:
                for i in range(3):
                    await pool.send(_envelope(f"holder{i}@example.org"))
            finally:
                await pool.close()
            return sink.messages

    messages = uvloop.run(send_three())
    assert messages == [([f"holder{i}@example.org"], DATA) for i in range(3)]
