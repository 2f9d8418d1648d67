"""Reminders end to end: the real relay (in this loop), RabbitMQ, the issuance worker and the
SMTP and SMS sinks, on a database of this module's own, with a "day" of one second."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from email import message_from_bytes

import pytest
import pytest_asyncio

from credbatch.batches.repository import get_batch
from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher, connect, declare_topology
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from services.batch_status.report import report_chunks
from tests.fixtures.batches import record_states
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import Arranged, Sinks, arrange_batch, running_worker
from workers.relay.main import dispatch_limits
from workers.relay.relay import OutboxRelay

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def settings(worker_settings: Settings, fair_db: FairDb) -> Settings:
    return worker_settings.with_overrides(
        database_url=fair_db.settings.database_url,
        app_database_url=fair_db.settings.app_database_url,
        reminder_day_seconds=1.0,
    )


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_slate(fair_db: FairDb) -> AsyncIterator[None]:
    # The relay serves every tenant of the database: no schedule of another test may remain.
    await fair_db.owner.execute("DELETE FROM record_reminders")
    yield
    await fair_db.owner.execute("DELETE FROM record_reminders")


@contextlib.asynccontextmanager
async def pipeline(settings: Settings, fair: FairDb) -> AsyncIterator[None]:
    """The relay and a worker, running until the block ends."""
    connection = await connect(settings, name="reminders-relay")
    stop = asyncio.Event()
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        relay = OutboxRelay(
            fair.relay,
            ConfirmingPublisher(channel),
            limits=dispatch_limits(settings),
            poll_interval=0.1,
        )
        running = asyncio.create_task(relay.run(stop))
        try:
            async with running_worker(settings):
                yield
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
    finally:
        await connection.close()


async def arrange(
    fair: FairDb,
    count: int,
    days: Sequence[int] | None,
    *,
    mediums: Sequence[str] = ("EMAIL", "SMS"),
) -> Arranged:
    """A batch with the reminder ``days`` whose records wait in the outbox."""
    arranged = await arrange_batch(fair.owner, count, mediums=mediums, certificate=False)
    await fair.owner.execute(
        "UPDATE batches SET reminder_days = $2 WHERE id = $1",
        arranged.batch_id,
        list(days) if days else None,
    )
    await fair.owner.execute(
        "UPDATE records SET state = 'PENDING', queued_at = NULL WHERE batch_id = $1",
        arranged.batch_id,
    )
    return arranged


async def wait_for(fair: FairDb, query: str, *args: object, timeout: float = 60) -> None:
    """Poll until ``query`` (a boolean) is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await fair.owner.fetchval(query, *args):
        assert loop.time() < deadline, f"not reached in {timeout} s: {query}"
        await asyncio.sleep(0.1)


SCHEDULES_DONE = """
SELECT count(*) = $2 FROM record_reminders WHERE batch_id = $1 AND due_at IS NULL
"""
ALL_INVITED = "SELECT count(*) = $2 FROM records WHERE batch_id = $1 AND state = 'INVITED'"


def mails_to(sinks: Sinks, address: str) -> list[tuple[str, str]]:
    """(subject, text) of every mail to ``address``, in order of arrival."""
    found = []
    for recipients, raw in sinks.smtp.messages:
        if address in recipients:
            message = message_from_bytes(raw)
            text = ""
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    payload = part.get_payload(decode=True)
                    assert isinstance(payload, bytes)
                    text = payload.decode()
            found.append((str(message["Subject"]), text))
    return found


def sms_to(sinks: Sinks, phone: str) -> list[str]:
    return [m["body"] for m in sinks.sms.messages if m["to"] == phone]


CLAIM_URL = re.compile(r"https?://\S+/claim/[A-Za-z0-9_-]+")


async def test_each_step_reaches_every_channel_with_the_claim_link(
    settings: Settings, fair_db: FairDb, sinks: Sinks
) -> None:
    arranged = await arrange(fair_db, 5, [1, 2])
    async with pipeline(settings, fair_db):
        await wait_for(fair_db, SCHEDULES_DONE, arranged.batch_id, 5)
    # Reminders change no record's state, nor the batch's counts.
    assert await record_states(fair_db.owner, arranged.batch_id) == {"INVITED": 5}
    for row in arranged.rows:
        mails = mails_to(sinks, row["email"])
        assert len(mails) == 3, mails
        (invitation_subject, invitation), *reminders = mails
        assert not invitation_subject.startswith("Reminder")
        [link] = set(CLAIM_URL.findall(invitation))
        for subject, text in reminders:
            assert subject.startswith("Reminder: ")
            assert CLAIM_URL.findall(text) == [link]  # the same link: nothing signed again
        texts = sms_to(sinks, row["phone"])
        assert len(texts) == 3, texts
        assert [t.startswith("Reminder: ") for t in texts] == [False, True, True]
        # A wallet batch sends its code by SMS, apart from the link (the email's): the
        # reminders too, with the record's current offer's code each time.
        codes = {re.findall(r"wallet code: (\d+)", t)[0] for t in texts[1:]}
        assert len(codes) == 1
        assert not any(link in t for t in texts)
    sent = await fair_db.owner.fetch(
        "SELECT step, sent, email_step, sms_step FROM record_reminders WHERE batch_id = $1",
        arranged.batch_id,
    )
    assert {tuple(r) for r in sent} == {(3, 2, 2, 2)}
    async with tenant_transaction(fair_db.app, service_scope(arranged.tenant_id)) as conn:
        view = await get_batch(conn, arranged.batch_id)
    assert view is not None
    assert (view.reminder_days, view.reminders_sent) == ((1, 2), 10)
    scope = TenantScope(arranged.tenant_id, "root", frozenset({"org_admin"}))
    report = b"".join(
        [c async for c in report_chunks(fair_db.app, scope, arranged.batch_id, [], "http://x")]
    )
    rows = list(csv.DictReader(io.StringIO(report.decode())))
    assert [r["reminders_sent"] for r in rows] == ["2"] * 5


async def test_a_custom_reminder_template_is_used(
    settings: Settings, fair_db: FairDb, sinks: Sinks
) -> None:
    arranged = await arrange(fair_db, 3, [1], mediums=("EMAIL",))
    template = uuid.uuid4()
    await fair_db.owner.execute(
        "INSERT INTO email_templates (tenant_id, id, display_name, subject, html_body,"
        " text_body, created_by) VALUES ($1, $2, 'nudge', $3, $4, $5, 'test')",
        arranged.tenant_id,
        template,
        "Still waiting for you, {{ full_name }}",
        '<p><a href="{{ claim_url }}">claim</a></p>',
        "Your credential waits: {{ claim_url }}",
    )
    await fair_db.owner.execute(
        "UPDATE batches SET reminder_email_template_id = $2 WHERE id = $1",
        arranged.batch_id,
        template,
    )
    async with pipeline(settings, fair_db):
        await wait_for(fair_db, SCHEDULES_DONE, arranged.batch_id, 3)
    for row in arranged.rows:
        [_, (subject, text)] = mails_to(sinks, row["email"])
        assert subject == f"Still waiting for you, {row['attributes']['full_name']}"
        assert text.startswith("Your credential waits: ")


async def test_closed_records_get_no_reminder_and_no_schedule_none(
    settings: Settings, fair_db: FairDb, sinks: Sinks
) -> None:
    arranged = await arrange(fair_db, 4, [3], mediums=("EMAIL",))
    unscheduled = await arrange(fair_db, 2, None, mediums=("EMAIL",))
    claimed, revoked, run_out, still_open = arranged.record_ids
    async with pipeline(settings, fair_db):
        await wait_for(fair_db, ALL_INVITED, arranged.batch_id, 4)
        await wait_for(fair_db, ALL_INVITED, unscheduled.batch_id, 2)
        # Before the third "day": claimed, revoked, and a claim link that ran out.
        await fair_db.owner.execute(
            "UPDATE records SET state = 'CLAIMED', claimed_at = now() WHERE id = $1", claimed
        )
        await fair_db.owner.execute(
            "UPDATE records SET state = 'REVOKED', revoked_at = now() WHERE id = $1", revoked
        )
        await fair_db.owner.execute(
            "UPDATE credentials SET claim_expires_at = now() WHERE record_id = $1", run_out
        )
        await wait_for(
            fair_db,
            "SELECT count(*) = 1 FROM record_reminders WHERE record_id = $1 AND due_at IS NULL",
            still_open,
        )
        await asyncio.sleep(1.0)  # time for a wrong reminder to arrive
    received = {
        record: len(mails_to(sinks, row["email"]))
        for record, row in zip(arranged.record_ids, arranged.rows, strict=True)
    }
    assert received == {claimed: 1, revoked: 1, run_out: 1, still_open: 2}
    left = await fair_db.owner.fetch(
        "SELECT record_id FROM record_reminders WHERE batch_id = $1", arranged.batch_id
    )
    assert [r["record_id"] for r in left] == [still_open]
    # A batch without a schedule has none, and its holders got their invitation only.
    assert (
        await fair_db.owner.fetchval(
            "SELECT count(*) FROM record_reminders WHERE batch_id = $1", unscheduled.batch_id
        )
        == 0
    )
    assert all(len(mails_to(sinks, row["email"])) == 1 for row in unscheduled.rows)
