"""The bounce receiver against the real PostgreSQL, over real SMTP: what it accepts, what it
refuses, and that a forged bounce reaches no record, of its tenant or another."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.delivery import verp
from credbatch.delivery.dsn import Report
from credbatch.delivery.model import DeliveryState
from credbatch.devsinks.dsn import build_dsn
from services.bounces.main import start_server
from services.bounces.repository import record_email_reports
from tests.fixtures.issuance import Arranged, arrange_batch

DOMAIN = "bounces.receiver.test"
KEY = "receiver-test-bounce-key-of-32-bytes-or-more"
CORPUS = Path(__file__).parents[2] / "bounces" / "corpus"


@pytest_asyncio.fixture(loop_scope="session")
async def receiver(db_settings: Settings, public_pool: asyncpg.Pool) -> AsyncIterator[int]:
    """The receiver on a free port (as the public endpoints' role); its port."""
    settings = db_settings.with_overrides(
        bounce_domain=DOMAIN, bounce_key=KEY, bounce_max_bytes=64 * 1024
    )
    server, _ = await start_server(settings, public_pool, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _sent(owner_pool: asyncpg.Pool, count: int = 2) -> Arranged:
    """A batch whose records were invited by email (ACCEPTED)."""
    arranged = await arrange_batch(owner_pool, count, mediums=("EMAIL",), certificate=False)
    await owner_pool.execute(
        "UPDATE records SET state = 'ISSUED' WHERE batch_id = $1", arranged.batch_id
    )
    await owner_pool.execute(
        "UPDATE records SET state = 'INVITED', email_sent_at = now() WHERE batch_id = $1",
        arranged.batch_id,
    )
    return arranged


def _address(record_id: uuid.UUID) -> str:
    return verp.address(KEY.encode(), DOMAIN, record_id)


def _bounce(to: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    return build_dsn(
        reporting_mta="mx.example.org",
        sender=to,
        recipient="holder@example.org",
        action=action,
        status=status,
        diagnostic=f"smtp; 550 {status} <holder@example.org>: unknown",
        original=b"Subject: invitation\r\n\r\n",
    )


async def _send(port: int, to: str, data: bytes) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
    async with client:
        await client.sendmail("", [to], data)


async def _send_replying(port: int, to: str, data: bytes) -> tuple[dict[str, object], str]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
    async with client:
        errors, reply = await client.sendmail("", [to], data)
    return dict(errors), reply


async def _delivery(owner_pool: asyncpg.Pool, record_id: uuid.UUID) -> tuple[str, str | None]:
    row = await owner_pool.fetchrow(
        "SELECT email_delivery, email_delivery_code FROM records WHERE id = $1", record_id
    )
    return row["email_delivery"], row["email_delivery_code"]


async def test_a_bounce_is_recorded_on_its_record_only(
    receiver: int, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool)
    first, second = arranged.record_ids
    await _send(receiver, _address(first), _bounce(_address(first)))
    assert await _delivery(owner_pool, first) == ("BOUNCED", "5.1.1")
    assert await _delivery(owner_pool, second) == ("ACCEPTED", None)


@pytest.mark.parametrize(
    ("name", "state", "code"),
    [
        ("lhost-postfix-01.eml", "BOUNCED", "5.1.1"),
        ("lhost-exim-01.eml", "BOUNCED", "5.7.0"),
        ("lhost-office365-01.eml", "BOUNCED", "5.1.10"),
        ("lhost-gmail-01.eml", "BOUNCED", "5.1.1"),
        ("lhost-outlook-06.eml", "DEFERRED", "4.4.7"),
    ],
)
async def test_real_bounces_are_recorded(
    receiver: int, owner_pool: asyncpg.Pool, name: str, state: str, code: str
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    await _send(receiver, _address(record), (CORPUS / name).read_bytes())
    assert await _delivery(owner_pool, record) == (state, code)


async def test_a_soft_bounce_then_a_receipt_then_a_late_soft_bounce(
    receiver: int, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    to = _address(record)
    await _send(receiver, to, _bounce(to, "4.2.2"))
    assert await _delivery(owner_pool, record) == ("DEFERRED", "4.2.2")
    await _send(receiver, to, _bounce(to, "2.0.0", action="delivered"))
    assert await _delivery(owner_pool, record) == ("DELIVERED", "2.0.0")
    # A delay report that arrives late says less than the receipt: kept DELIVERED.
    await _send(receiver, to, _bounce(to, "4.4.7", action="delayed"))
    assert await _delivery(owner_pool, record) == ("DELIVERED", "2.0.0")


async def test_forged_tokens_are_refused_at_rcpt(receiver: int, owner_pool: asyncpg.Pool) -> None:
    ours = await _sent(owner_pool, 1)
    theirs = await _sent(owner_pool, 1)  # another tenant's batch
    [record] = ours.record_ids
    [victim] = theirs.record_ids
    token = verp.token(KEY.encode(), record)
    # This record's MAC under another tenant's record id; a MAC under another key; garbage.
    other_id = verp.token(KEY.encode(), victim)[:26] + token[26:]
    wrong_key = verp.address(b"not-the-key-of-this-deployment-32b", DOMAIN, victim)
    for forged in (
        f"{verp.PREFIX}{other_id}@{DOMAIN}",
        wrong_key,
        f"{verp.PREFIX}{'a' * 45}@{DOMAIN}",
        f"postmaster@{DOMAIN}",
    ):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await _send(receiver, forged, _bounce(forged))
        assert refused.value.recipients[0].code == 550
    assert await _delivery(owner_pool, victim) == ("ACCEPTED", None)
    assert await _delivery(owner_pool, record) == ("ACCEPTED", None)


async def test_mail_for_other_domains_is_not_relayed(receiver: int) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await _send(receiver, "someone@example.org", b"Subject: hi\r\n\r\nhi\r\n")
    assert refused.value.recipients[0].code == 550
    assert "Relaying denied" in refused.value.recipients[0].message


async def test_a_message_over_the_size_limit_is_refused(
    receiver: int, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    to = _address(record)
    huge = _bounce(to) + b"x" * (70 * 1024) + b"\r\n"
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await _send(receiver, to, huge)
    assert refused.value.code == 552
    assert await _delivery(owner_pool, record) == ("ACCEPTED", None)


async def test_mail_that_is_no_report_is_accepted_and_dropped(
    receiver: int, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    await _send(receiver, _address(record), (CORPUS / "rfc3834-01.eml").read_bytes())
    assert await _delivery(owner_pool, record) == ("ACCEPTED", None)


async def test_a_bounce_for_a_revoked_record_keeps_its_state(
    receiver: int, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    await owner_pool.execute(
        "UPDATE records SET state = 'REVOKED', revoked_at = now(), revoke_reason = 'test'"
        " WHERE id = $1",
        record,
    )
    await _send(receiver, _address(record), _bounce(_address(record)))
    row = await owner_pool.fetchrow(
        "SELECT state, email_delivery FROM records WHERE id = $1", record
    )
    assert (row["state"], row["email_delivery"]) == ("REVOKED", "BOUNCED")
    # The same bounce again (a relay retrying): accepted, nothing changes.
    await _send(receiver, _address(record), _bounce(_address(record)))
    row = await owner_pool.fetchrow(
        "SELECT state, email_delivery FROM records WHERE id = $1", record
    )
    assert (row["state"], row["email_delivery"]) == ("REVOKED", "BOUNCED")


async def test_a_bounce_for_a_purged_record_is_accepted_and_records_nothing(
    receiver: int, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    await owner_pool.execute(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types)"
        " VALUES ($1, $2, 'https://hooks.example/x', ARRAY['record.bounced'])",
        arranged.tenant_id,
        uuid.uuid4(),
    )
    erased = await owner_pool.fetchval(
        "SELECT records_erase($1, $2, 'ERASURE')", arranged.tenant_id, [record]
    )
    assert erased == 1
    before = await owner_pool.fetchrow("SELECT * FROM records WHERE id = $1", record)
    # Answered 250 each time (the reporting system stops retrying), recorded nowhere.
    for _ in range(2):
        errors, reply = await _send_replying(receiver, _address(record), _bounce(_address(record)))
        assert not errors and reply.startswith("2.0.0"), reply
    after = await owner_pool.fetchrow("SELECT * FROM records WHERE id = $1", record)
    assert dict(after) == dict(before)
    assert (after["state"], after["email"], after["email_delivery"]) == (
        "INVITED",
        None,
        "ACCEPTED",
    )
    assert after["purged_at"] is not None
    assert not await owner_pool.fetchval(
        "SELECT count(*) FROM webhook_events WHERE tenant_id = $1", arranged.tenant_id
    )


async def test_the_public_role_changes_records_only_through_the_function(
    public_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await public_pool.execute(
            "UPDATE records SET email_delivery = 'BOUNCED' WHERE id = $1", record
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await public_pool.fetch("SELECT email FROM records WHERE id = $1", record)


async def test_reports_of_a_replaced_send_are_stale(
    receiver: int, owner_pool: asyncpg.Pool, public_pool: asyncpg.Pool
) -> None:
    arranged = await _sent(owner_pool, 1)
    [record] = arranged.record_ids
    # A resend: the stamp cleared (send 1 begins), then the new invitation stamped.
    await owner_pool.execute("UPDATE records SET email_sent_at = NULL WHERE id = $1", record)
    await owner_pool.execute("UPDATE records SET email_sent_at = now() WHERE id = $1", record)
    assert await owner_pool.fetchval("SELECT email_send FROM records WHERE id = $1", record) == 1
    old = verp.address(KEY.encode(), DOMAIN, record, 0)
    await _send(receiver, old, _bounce(old))
    assert await _delivery(owner_pool, record) == ("ACCEPTED", None)
    # In one call, the stale bounce (stronger) does not hide the current send's receipt.
    outcomes = await record_email_reports(
        public_pool,
        [
            (verp.Send(record, 0), Report(DeliveryState.BOUNCED, "5.1.1", "unknown user")),
            (verp.Send(record, 1), Report(DeliveryState.DELIVERED, "2.0.0", None)),
            (verp.Send(uuid.uuid4(), 0), Report(DeliveryState.BOUNCED, "5.1.1", None)),
        ],
    )
    assert outcomes == ["stale", "recorded", "unknown"]
    assert await _delivery(owner_pool, record) == ("DELIVERED", "2.0.0")
