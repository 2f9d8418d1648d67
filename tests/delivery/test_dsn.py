"""Reading bounces: real ones of several mail systems (tests/bounces/corpus, BSD-2 licensed,
see its README) and the shapes the development sink writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from credbatch.delivery.dsn import Report, parse, scrub
from credbatch.delivery.model import DeliveryState
from credbatch.devsinks.dsn import build_dsn

CORPUS = Path(__file__).parents[1] / "bounces" / "corpus"

BOUNCED = DeliveryState.BOUNCED
DEFERRED = DeliveryState.DEFERRED


@pytest.mark.parametrize(
    ("name", "state", "code", "words"),
    [
        # RFC 3464 multipart/report with a delivery-status part.
        ("lhost-postfix-01.eml", BOUNCED, "5.1.1", "No such user"),
        ("lhost-exchange2007-01.eml", BOUNCED, "5.1.1", "RecipNotFound"),
        ("lhost-outlook-06.eml", DEFERRED, "4.4.7", None),
        # Action failed with a 4.x.x status: a soft bounce.
        ("lhost-postfix-05.eml", DEFERRED, "4.1.1", "User unknown"),
        # Non-standard shapes: plain text, the code in the remote server's reply.
        ("lhost-exim-01.eml", BOUNCED, "5.7.0", "smtp server of your ISP"),
        ("lhost-gmail-01.eml", BOUNCED, "5.1.1", "User Unknown"),
        ("lhost-qmail-01.eml", BOUNCED, "5.5.0", "Unknown user"),
        # A report without its status part: the reply outranks "see DSN 5.1.10" above it.
        ("lhost-office365-01.eml", BOUNCED, "5.1.10", "RecipientNotFound"),
    ],
)
def test_real_bounces(name: str, state: DeliveryState, code: str, words: str | None) -> None:
    report = parse((CORPUS / name).read_bytes())
    assert report is not None
    assert (report.state, report.code) == (state, code)
    if words is None:
        assert report.diagnostic is None
    else:
        assert report.diagnostic is not None and words in report.diagnostic
        assert "@" not in report.diagnostic  # addresses never reach the database


def test_an_automatic_reply_is_no_report() -> None:
    assert parse((CORPUS / "rfc3834-01.eml").read_bytes()) is None


def test_mail_that_is_not_about_delivery_is_no_report() -> None:
    assert parse(b"From: someone@example.org\r\nSubject: hello\r\n\r\nlunch tomorrow?\r\n") is None


@pytest.mark.parametrize(
    ("action", "status", "state"),
    [
        ("failed", "5.1.1", DeliveryState.BOUNCED),
        ("failed", "4.2.2", DeliveryState.DEFERRED),
        ("delayed", "4.4.7", DeliveryState.DEFERRED),
        ("delivered", "2.0.0", DeliveryState.DELIVERED),
        ("relayed", "2.0.0", DeliveryState.DELIVERED),
    ],
)
def test_the_sinks_reports(action: str, status: str, state: DeliveryState) -> None:
    data = build_dsn(
        reporting_mta="sink.example",
        sender="bounce+abc@bounces.example",
        recipient="jane.doe@example.org",
        action=action,
        status=status,
        diagnostic=f"smtp; 550 {status} <jane.doe@example.org> mailbox unknown",
        original=b"Subject: Your diploma\r\n\r\nhello\r\n",
    )
    assert parse(data) == Report(state, status, f"550 {status} <address> mailbox unknown")


def test_scrub_removes_addresses_paths_and_control_characters() -> None:
    text = 'user jane@example.org\x00 at "/var/spool/mail/jane" see http://example.org/a'
    assert scrub(text) == 'user <address> at "<path>" see http://example.org/a'
    assert scrub("x" * 900) == "x" * 500
    assert scrub("") is None
