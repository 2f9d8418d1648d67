"""The relay's claim of due reminders (reminder_claim): due rows only, records still open,
the tenants' sending rates spent, and the tenant's dispatch key kept while reminders are due."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest_asyncio

from tests.fixtures.batches import insert_batch
from tests.fixtures.dispatch import FairDb, claim_and_queue, drain

CLAIM = "SELECT * FROM reminder_claim($1, $2, $3, $4, $5, $6)"
MARK = "SELECT reminder_mark_queued($1::uuid[], $2::uuid[])"


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_slate(fair_db: FairDb) -> AsyncIterator[None]:
    await drain(fair_db.relay)
    await fair_db.owner.execute("DELETE FROM record_reminders")
    yield
    await fair_db.owner.execute("DELETE FROM record_reminders")


async def invited_batch(
    fair: FairDb,
    tenant_id: uuid.UUID,
    count: int,
    *,
    states: Sequence[str] | None = None,
    mediums: Sequence[str] = ("EMAIL",),
    due_in: float = -1.0,
) -> list[uuid.UUID]:
    """A batch of ``count`` INVITED records (or ``states``) with reminder step 1 due in
    ``due_in`` seconds (past by default)."""
    batch = await insert_batch(
        fair.owner, tenant_id, states=list(states or ["INVITED"] * count), mediums=mediums
    )
    await fair.owner.execute(
        "UPDATE batches SET reminder_days = '{3,10}' WHERE id = $1", batch.batch_id
    )
    await fair.owner.execute(
        "INSERT INTO record_reminders (tenant_id, record_id, batch_id, step, due_at)"
        " SELECT $1, r, $2, 1, now() + make_interval(secs => $4) FROM unnest($3::uuid[]) r",
        tenant_id,
        batch.batch_id,
        batch.record_ids,
        due_in,
    )
    return batch.record_ids


async def claim(
    pool: asyncpg.Pool,
    limit: int,
    emails: float | None = None,
    sms: float | None = None,
    max_in_flight: int | None = None,
) -> list[asyncpg.Record]:
    """One claim, marked and committed as the relay does."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(CLAIM, limit, emails, sms, 50, 600.0, max_in_flight)
        if rows:
            await conn.fetchval(
                MARK, [r["tenant_id"] for r in rows], [r["record_id"] for r in rows]
            )
    return list(rows)


async def test_only_due_reminders_of_open_records_are_claimed_once(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    open_ids = await invited_batch(fair_db, tenant, 3)
    later = await invited_batch(fair_db, tenant, 2, due_in=3600)
    closed = await invited_batch(
        fair_db, tenant, 4, states=["CLAIMED", "REVOKED", "EXPIRED", "CANCELLED"]
    )
    rows = await claim(fair_db.relay, 100)
    assert sorted(r["record_id"] for r in rows) == sorted(open_ids)
    assert {r["step"] for r in rows} == {1}
    # Published once: not claimed again while its job is in flight.
    assert await claim(fair_db.relay, 100) == []
    # The closed records' schedules are over; the later ones wait.
    left = {
        r["record_id"]
        for r in await fair_db.owner.fetch(
            "SELECT record_id FROM record_reminders WHERE tenant_id = $1", tenant
        )
    }
    assert left == set(open_ids) | set(later)
    assert not left & set(closed)


async def test_an_erased_holder_gets_no_reminder(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    erased, kept = await invited_batch(fair_db, tenant, 2)
    # As the retention purge and EraseHolder erase a holder's data.
    await fair_db.owner.execute(
        "SELECT records_erase($1, ARRAY[$2]::uuid[], 'ERASURE')", tenant, erased
    )
    assert [r["record_id"] for r in await claim(fair_db.relay, 10)] == [kept]
    assert (
        await fair_db.owner.fetchval(
            "SELECT count(*) FROM record_reminders WHERE record_id = $1", erased
        )
        == 0
    )


async def test_a_record_sent_back_to_the_outbox_leaves_its_schedule(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    [record] = await invited_batch(fair_db, tenant, 1)
    # Resent: its new invitation starts a new schedule (the outcome write makes it).
    await fair_db.owner.execute("UPDATE records SET state = 'PENDING' WHERE id = $1", record)
    assert await claim(fair_db.relay, 10) == []
    assert await fair_db.owner.fetchval("SELECT count(*) FROM record_reminders") == 0


async def test_reminders_spend_the_tenants_sending_rate(fair_db: FairDb) -> None:
    limited, free = uuid.uuid4(), uuid.uuid4()
    await invited_batch(fair_db, limited, 10)
    await invited_batch(fair_db, free, 10)
    await fair_db.owner.execute(
        "INSERT INTO tenant_limits (tenant_id, emails_per_second) VALUES ($1, 4)", limited
    )
    rows = await claim(fair_db.relay, 100)
    per_tenant = {t: sum(1 for r in rows if r["tenant_id"] == t) for t in (limited, free)}
    # A bucket of half a second at 4 per second: 2 now; the unlimited tenant takes all.
    assert per_tenant == {limited: 2, free: 10}
    tokens = await fair_db.owner.fetchval(
        "SELECT email_tokens FROM dispatch_tenants WHERE tenant_id = $1", limited
    )
    assert tokens is not None and tokens < 1
    # The key outlives an outbox claim that finds no batch of the tenant to dispatch, so
    # its spent bucket is not refilled by being made again.
    await claim_and_queue(fair_db.relay, 100)
    kept = await fair_db.owner.fetchval(
        "SELECT email_tokens FROM dispatch_tenants WHERE tenant_id = $1", limited
    )
    assert kept is not None and kept < 1
    assert len(await claim(fair_db.relay, 100)) <= 1


async def test_a_throttled_channel_holds_reminders_back(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    await invited_batch(fair_db, tenant, 3, mediums=("SMS",))
    await fair_db.owner.execute(
        "INSERT INTO dispatch_tenants (tenant_id, sms_throttled_until)"
        " VALUES ($1, now() + interval '1 hour')",
        tenant,
    )
    assert await claim(fair_db.relay, 100) == []


async def test_a_tenants_key_is_dropped_once_no_reminder_is_due(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    await invited_batch(fair_db, tenant, 1)
    assert len(await claim(fair_db.relay, 10)) == 1
    keyed = "SELECT count(*) FROM dispatch_tenants WHERE tenant_id = $1"
    assert await fair_db.owner.fetchval(keyed, tenant) == 1
    # The step is finished: nothing due any more, and the outbox claim drops the key.
    await fair_db.owner.execute(
        "UPDATE record_reminders SET due_at = NULL, queued_at = NULL WHERE tenant_id = $1",
        tenant,
    )
    await claim_and_queue(fair_db.relay, 10)
    assert await fair_db.owner.fetchval(keyed, tenant) == 0


async def test_reminders_in_flight_count_against_the_cap(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    await invited_batch(fair_db, tenant, 10)
    # Records QUEUED by earlier tests' claims count too.
    queued = await fair_db.owner.fetchval("SELECT count(*) FROM dispatch_in_flight")
    assert len(await claim(fair_db.relay, 100, max_in_flight=queued + 4)) == 4
    # Four published and not finished: the cap is reached.
    assert await claim(fair_db.relay, 100, max_in_flight=queued + 4) == []
    assert len(await claim(fair_db.relay, 100, max_in_flight=queued + 7)) == 3
