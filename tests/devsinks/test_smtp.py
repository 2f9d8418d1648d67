from email import message_from_bytes
from pathlib import Path

import aiosmtplib
import pytest

from credbatch.devsinks.smtp import SmtpSink


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
