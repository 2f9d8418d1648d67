"""Email invitations over SMTP through a small pool of reused aiosmtplib connections.

A new connection per email would pay the connect, the greeting, EHLO and any TLS and login
for every message; a reused connection pays them once, and the pool's connections send in
parallel. A connection that fails is dropped and replaced on next use.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import secrets
import ssl
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate

import aiosmtplib

from credbatch.metrics import SMTP_CONNECTIONS, SMTP_CONNECTIONS_BUSY
from credbatch.schema.model import Medium
from workers.issuance.delivery.smtp_session import SmtpSession
from workers.issuance.outcomes import IssuanceFailure, Throttle, permanent, throttled, transient

# Replies that throttle the sender rather than refuse the message: 421 (the server closes the
# channel; relays send it for too many connections or messages), any 4.7.x enhanced status
# (security or policy: rate limits, greylisting), and, from servers without enhanced codes,
# 451/452 replies that say so in words. A reply with another enhanced code (4.2.2 mailbox full,
# 4.3.0 mailbox unavailable, 4.5.3 too many recipients) is about the message, whatever its
# text adds ("try again later" closes most 4xx replies): an ordinary transient failure that
# counts an attempt.
_THROTTLE_WORDS = re.compile(
    r"\brate\b|throttl|too many (messages|mails|emails|connections|requests)|slow down",
    re.IGNORECASE,
)
_ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\b")


def _is_throttle(code: int, message: str) -> bool:
    if code == 421:
        return True
    text = message.lstrip()
    if _ENHANCED_CODE.match(text):
        return text.startswith("4.7.")
    return code in (451, 452) and bool(_THROTTLE_WORDS.search(message))


def _header_text(value: str) -> str:
    """A header value: ASCII as is, anything else as RFC 2047 encoded words."""
    value = " ".join(value.split())  # no CR/LF can reach the header block
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _address(value: str) -> str:
    if any(c in value for c in "\r\n<>,") or not value.isascii():
        raise permanent("EMAIL_INVALID", "the recipient address cannot be used in a header")
    return value


def _from(address: str, name: str) -> str:
    if not name:
        return _address(address)
    # formataddr quotes the name, or encodes it (RFC 2047) when it is not ASCII; the profile
    # refuses control characters, so the name cannot end the header.
    return formataddr((name, _address(address)), charset="utf-8")


def _part(content_type: str, text: str) -> bytes:
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + body


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    sender_name: str = "",
    reply_to: str = "",
) -> bytes:
    """A multipart/alternative message (plain text first, HTML preferred), as wire bytes.
    ``sender_name`` is the From's display name (the issuer's; the address stays ours, which
    the relay signs for), ``reply_to`` where holders' replies go.

    Built by hand: building and flattening such a message with the ``email`` package costs
    more than everything else a record costs together.
    """
    boundary = "=_" + secrets.token_hex(16)
    head = (
        f"From: {_from(sender, sender_name)}\r\n"
        f"To: {_address(recipient)}\r\n"
        + (f"Reply-To: {_address(reply_to)}\r\n" if reply_to else "")
        + f"Subject: {_header_text(subject)}\r\n"
        f"Date: {formatdate(localtime=False)}\r\n"
        f"Message-ID: <{secrets.token_hex(16)}@credbatch>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    ).encode("ascii")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        (
            head,
            delimiter,
            _part("text/plain", text),
            delimiter,
            _part("text/html", html),
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )


@dataclass(frozen=True, slots=True)
class Envelope:
    """What SMTP needs: envelope sender and recipient, and the message bytes."""

    sender: str
    recipient: str
    data: bytes


def _classify(error: Exception) -> IssuanceFailure:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refused = error.recipients[0] if error.recipients else None
        if refused is not None:
            return _classify(refused)
        return permanent("SMTP_REJECTED", "all recipients refused")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        reply = f"{error.code} {error.message}"
        if 400 <= error.code < 500 and _is_throttle(error.code, error.message):
            # SMTP carries no Retry-After: the back-off step of the job's attempt.
            return throttled("SMTP_THROTTLED", reply, Throttle(Medium.EMAIL))
        if 400 <= error.code < 500:
            return transient("SMTP_TEMPORARY_FAILURE", reply)
        return permanent("SMTP_REJECTED", reply)
    if isinstance(error, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return transient("SMTP_TIMEOUT", "SMTP server timed out")
    return transient("SMTP_UNAVAILABLE", f"SMTP server unavailable: {type(error).__name__}")


class SmtpPool:
    """Up to ``size`` reused SMTP connections to one server.

    ``tls`` is ``starttls`` (STARTTLS is required: a server that does not offer it is an
    error, never a silent fallback to clear text), ``implicit`` (TLS from the first byte) or
    ``none``. Certificates are verified against the system store, or only against
    ``ca_file`` when given (a private relay). With a username, every connection logs in.
    """

    def __init__(
        self,
        host: str,
        port: int,
        size: int,
        *,
        timeout: float = 10.0,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        if tls not in ("starttls", "implicit", "none"):
            raise ValueError(f"unknown SMTP TLS mode {tls!r}")
        self._host = host
        self._port = port
        self._timeout = timeout
        self._tls = tls
        self._username = username
        self._password = password
        self._tls_context = ssl.create_default_context(cafile=ca_file) if tls != "none" else None
        self._idle: asyncio.Queue[SmtpSession | None] = asyncio.Queue()
        for _ in range(size):
            self._idle.put_nowait(None)  # a slot with no connection yet
        SMTP_CONNECTIONS.set(size)

    async def _connect(self) -> SmtpSession:
        """A connected session, TLS and login done.

        Raises:
            IssuanceFailure: transient SMTP_TLS_FAILED, SMTP_AUTH_FAILED or
                SMTP_SETUP_FAILED (the relay or its configuration, not the record, is wrong:
                a later attempt may succeed once it is fixed).
            aiosmtplib.SMTPException, OSError: as send() classifies them.
        """
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            timeout=self._timeout,
            use_tls=self._tls == "implicit",
            start_tls=self._tls == "starttls",
            tls_context=self._tls_context,
            username=self._username,
            password=self._password,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:  # no TLS or login asked for it
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()  # a server without ESMTP: no SIZE then
        except aiosmtplib.SMTPAuthenticationError as error:
            client.close()
            raise transient(
                "SMTP_AUTH_FAILED",
                "the SMTP server refused the login of CREDBATCH_SMTP_USERNAME: "
                f"{error.code} {error.message}",
            ) from None
        except (ssl.SSLError, aiosmtplib.SMTPException) as error:
            client.close()
            cause = error if isinstance(error, ssl.SSLError) else error.__cause__
            if isinstance(cause, ssl.SSLError):
                raise transient(
                    "SMTP_TLS_FAILED", f"TLS with the SMTP server failed: {cause}"
                ) from None
            if not isinstance(error, aiosmtplib.SMTPResponseException | OSError):
                # aiosmtplib's own refusal: no STARTTLS or no AUTH offered, and the like.
                raise transient(
                    "SMTP_SETUP_FAILED", f"SMTP connection set-up failed: {error}"
                ) from None
            raise
        try:
            return SmtpSession(client, self._timeout)
        except aiosmtplib.SMTPException:
            client.close()
            raise

    async def send(self, message: Envelope) -> None:
        """Send one message.

        Raises:
            IssuanceFailure: throttled (421, 4.7.x, "try later" 451/452), transient
                (connection, timeout, other 4xx) or permanent (5xx).
        """
        client = await self._idle.get()
        SMTP_CONNECTIONS_BUSY.add(1)
        try:
            if client is None or not client.is_connected:
                client = None
                client = await self._connect()
            # Both addresses were checked as build_message wrote them into the headers (the
            # envelope sender is the From address or its VERP form), with CRLF line endings.
            await client.send(message.sender, message.recipient, message.data)
        except aiosmtplib.SMTPRecipientsRefused as error:
            # The connection is still fine after RCPT refusals; reset the transaction.
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.rset()  # type: ignore[union-attr]
            raise _classify(error) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            if client is not None:
                client.close()
                client = None
            raise _classify(error) from None
        finally:
            SMTP_CONNECTIONS_BUSY.add(-1)
            self._idle.put_nowait(client)

    async def close(self) -> None:
        clients = []
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None and client.is_connected:
                clients.append(client)
        await asyncio.gather(*(self._quit(c) for c in clients))

    @staticmethod
    async def _quit(client: SmtpSession) -> None:
        # A polite QUIT, but never let a slow server hold up a stopping worker.
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await client.quit()
        client.close()
