"""Delivery status notifications as a mail system writes them (RFC 3464), for the sinks.

The development SMTP sink bounces or confirms messages with these, sent to the message's
envelope sender, so the bounce receiver is exercised by the same bytes a relay would send.
"""

from __future__ import annotations

from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid

import aiosmtplib

_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Successful Mail Delivery Report",
}


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    recipient: str,
    action: str,
    status: str,
    diagnostic: str | None,
    original: bytes,
) -> bytes:
    """A ``multipart/report`` for one recipient: a human part, the delivery-status part, and
    the original message's headers."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = sender
    report["Subject"] = _SUBJECTS.get(action, "Delivery Status Notification")
    report["Date"] = formatdate()
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    report.attach(
        MIMEText(f"This is the mail system at host {reporting_mta}.\n\nAction: {action}.\n")
    )
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    if diagnostic is not None:
        per_recipient["Diagnostic-Code"] = diagnostic
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers, _, _ = original.partition(b"\r\n\r\n")
    returned = MIMEBase("text", "rfc822-headers")
    returned.set_payload(headers.decode("ascii", "replace"))
    report.attach(returned)
    return report.as_bytes()


async def send_dsn(host: str, port: int, to: str, data: bytes) -> None:
    """Deliver a DSN to ``to`` through the SMTP server at host:port, with the null reverse
    path a bounce always carries (so it can never bounce in its turn)."""
    client = aiosmtplib.SMTP(hostname=host, port=port, timeout=10.0)
    async with client:
        await client.sendmail("", [to], data)
