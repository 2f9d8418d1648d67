import asyncio
from email import message_from_bytes
from pathlib import Path

import aiosmtplib
import pytest

from credbatch.delivery.dsn import parse
from credbatch.delivery.model import DeliveryState
from credbatch.devsinks.smtp import SmtpSink, bounce_patterns


async def test_sink_stores_messages_and_fails_on_request(tmp_path: Path) -> None:
    async with SmtpSink(tmp_path) as sink:
        await aiosmtplib.send(
            "Subject: hi\r\n\r\nbody",
            sender="a@x.test",
            recipients=["b@x.test"],
            hostname="127.0.0.1",
            port=sink.port,
        )
        assert len(list(tmp_path.glob("*.eml"))) == 1
        assert message_from_bytes(sink.messages[0][1])["Subject"] == "hi"

        sink.handler.refuse["bad@x.test"] = "No such user"
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await aiosmtplib.send(
                "Subject: x\r\n\r\n",
                sender="a@x.test",
                recipients=["bad@x.test"],
                hostname="127.0.0.1",
                port=sink.port,
            )
        assert refused.value.recipients[0].code == 550

        sink.handler.temporary_failure = True
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as temporary:
            await aiosmtplib.send(
                "Subject: x\r\n\r\n",
                sender="a@x.test",
                recipients=["b@x.test"],
                hostname="127.0.0.1",
                port=sink.port,
            )
        assert temporary.value.recipients[0].code == 451
        sink.handler.temporary_failure = False

        port = sink.port
        await sink.stop()
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await aiosmtplib.send(
                "Subject: x\r\n\r\n",
                sender="a@x.test",
                recipients=["b@x.test"],
                hostname="127.0.0.1",
                port=port,
            )
        await sink.start()
        assert sink.port == port
        await aiosmtplib.send(
            "Subject: back\r\n\r\n",
            sender="a@x.test",
            recipients=["b@x.test"],
            hostname="127.0.0.1",
            port=port,
        )
        assert len(sink.messages) == 2


async def test_sink_bounces_matching_recipients_to_the_envelope_sender_only() -> None:
    async with SmtpSink() as sink, SmtpSink() as receiver:
        sink.handler.bounce_patterns = bounce_patterns("*@bounce.example, +1555*")
        sink.handler.bounce_domain = "bounces.test"
        sink.handler.report_to = ("127.0.0.1", receiver.port)
        for sender, recipient in (
            ("bounce+abc@bounces.test", "jane@bounce.example"),  # bounces
            ("bounce+abc@bounces.test", "john@example.org"),  # delivered, no receipt asked
            ("someone@elsewhere.test", "jane@bounce.example"),  # never backscatter
        ):
            await aiosmtplib.send(
                "Subject: invitation\r\n\r\nbody",
                sender=sender,
                recipients=[recipient],
                hostname="127.0.0.1",
                port=sink.port,
            )
        await asyncio.gather(*sink.handler.reports)
        assert sink.handler.reports_sent == 1
        [(recipients, data)] = receiver.messages
        assert recipients == ["bounce+abc@bounces.test"]
        report = parse(data)
        assert report is not None and (report.state, report.code) == (
            DeliveryState.BOUNCED,
            "5.1.1",
        )
        # With receipts, the other recipients get a delivery report.
        sink.handler.receipts = True
        await aiosmtplib.send(
            "Subject: invitation\r\n\r\nbody",
            sender="bounce+def@bounces.test",
            recipients=["john@example.org"],
            hostname="127.0.0.1",
            port=sink.port,
        )
        await asyncio.gather(*sink.handler.reports)
        delivered = parse(receiver.messages[-1][1])
        assert delivered is not None and delivered.state is DeliveryState.DELIVERED


async def test_sink_offers_pipelining_and_takes_pipelined_messages(tmp_path: Path) -> None:
    from workers.issuance.delivery.email import Envelope, SmtpPool

    async with SmtpSink(tmp_path) as sink:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port)
        await client.connect()
        await client.ehlo()
        assert client.supports_extension("pipelining")
        await client.quit()

        pool = SmtpPool("127.0.0.1", sink.port, 1)
        try:
            for i in range(3):
                await pool.send(Envelope("a@x.test", f"b{i}@x.test", b"Subject: hi\r\n\r\n.\r\n"))
        finally:
            await pool.close()
        assert [(to, body) for to, body in sink.messages] == [
            ([f"b{i}@x.test"], b"Subject: hi\r\n\r\n.\r\n") for i in range(3)
        ]
