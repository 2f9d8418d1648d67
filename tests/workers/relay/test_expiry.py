"""The relay's expiry pass: INVITED records whose claim link ran out become EXPIRED, are
counted and announced, and a resend makes them PENDING again with a renewed link."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aio_pika

from credbatch.batches import commands, repository, resend, revocation
from credbatch.batches.model import RecordState
from credbatch.messaging import ConfirmingPublisher
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import record_states
from tests.fixtures.dispatch import FairDb
from tests.services.batch_status.issued_world import issue_batch, worker_side
from tests.workers.relay.test_sweeper import channel as channel
from workers.relay.sweeper import Sweeper, expire_links

PUBLIC_URL = "https://issuer.example.test"


async def test_run_out_links_expire_and_a_resend_revives_them(fair_db: FairDb) -> None:
    owner, app, relay = fair_db.owner, fair_db.app, fair_db.relay
    keys, signer = worker_side(app, PUBLIC_URL)
    issued = await issue_batch(
        app, owner, keys, signer, PUBLIC_URL, ["INVITED", "INVITED", "CLAIMED", "INVITED"]
    )
    run_out, fresh, claimed, locked = (r.record_id for r in issued.records)
    await owner.execute(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types)"
        " VALUES ($1, $2, 'https://hooks.example.test/', '{record.expired}')",
        issued.tenant_id,
        uuid.uuid4(),
    )
    await owner.execute(
        "UPDATE records SET invited_at = now() - interval '2 days' WHERE batch_id = $1",
        issued.batch_id,
    )
    await owner.execute(
        "UPDATE credentials SET claim_expires_at = now() - interval '1 second'"
        " WHERE record_id = ANY($1::uuid[])",
        [run_out, claimed, locked],
    )

    # A record someone else holds (a claim under way) is skipped, never waited for.
    async with owner.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM records WHERE id = $1 FOR UPDATE", locked)
        assert await expire_links(relay, 100) == 1
    # The claimed record's link ran out too, but it was claimed: only INVITED ones expire.
    assert await expire_links(relay, 100) == 1
    assert await expire_links(relay, 100) == 0

    states = dict(
        await owner.fetch("SELECT id, state FROM records WHERE batch_id = $1", issued.batch_id)
    )
    assert states == {run_out: "EXPIRED", fresh: "INVITED", claimed: "CLAIMED", locked: "EXPIRED"}
    assert (
        await owner.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND expired_at IS NOT NULL",
            issued.batch_id,
        )
        == 2
    )
    events = await owner.fetch(
        "SELECT type, payload FROM webhook_events WHERE tenant_id = $1", issued.tenant_id
    )
    assert sorted(e["type"] for e in events) == ["record.expired", "record.expired"]
    assert {e["payload"]["data"]["record"] for e in events} == {str(run_out), str(locked)}

    scope = service_scope(issued.tenant_id)
    async with tenant_transaction(app, scope, readonly=True) as conn:
        view = await repository.get_batch(conn, issued.batch_id)
    assert view is not None
    assert (view.counts.expired, view.counts.invited, view.counts.claimed) == (2, 1, 1)
    assert view.counts.of(RecordState.EXPIRED) == 2

    # A resend invites the expired holders again, with a link that works from now on.
    async with tenant_transaction(app, scope) as conn:
        done = await resend.resend_invitations(conn, issued.batch_id, [run_out], claim_ttl=3600)
    assert isinstance(done, resend.Resent) and done.resent == 1
    assert (await record_states(owner, issued.batch_id)).get("PENDING") == 1
    renewed = await owner.fetchval(
        "SELECT claim_expires_at FROM credentials WHERE record_id = $1", run_out
    )
    assert renewed > datetime.now(UTC)
    assert await owner.fetchval("SELECT expired_at FROM records WHERE id = $1", run_out) is None
    assert await expire_links(relay, 100) == 0

    # An expired record's credential may still be revoked (it was never claimed, but it is
    # signed and its holder could have saved the link's download).
    async with tenant_transaction(app, scope) as conn:
        revoked = await revocation.revoke_records(conn, issued.batch_id, [locked], "withdrawn")
    assert revoked == 1
    assert await owner.fetchval("SELECT state FROM records WHERE id = $1", locked) == "REVOKED"


async def test_the_sweeper_loop_runs_the_expiry_passes(
    fair_db: FairDb, channel: aio_pika.abc.AbstractChannel
) -> None:
    keys, signer = worker_side(fair_db.app, PUBLIC_URL)
    issued = await issue_batch(fair_db.app, fair_db.owner, keys, signer, PUBLIC_URL, ["INVITED"])
    [record] = [r.record_id for r in issued.records]
    await fair_db.owner.execute(
        "UPDATE credentials SET claim_expires_at = now() WHERE record_id = $1", record
    )
    sweeper = Sweeper(
        fair_db.relay,
        ConfirmingPublisher(channel),
        stuck_after=600,
        retry_delays=[5.0],
        interval=0.05,
        expiry_interval=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(sweeper.run(stop))
    try:
        async with asyncio.timeout(30):
            while (
                await fair_db.owner.fetchval("SELECT state FROM records WHERE id = $1", record)
                != "EXPIRED"
            ):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def test_a_retried_record_goes_out_with_a_link_that_works(fair_db: FairDb) -> None:
    keys, signer = worker_side(fair_db.app, PUBLIC_URL)
    issued = await issue_batch(
        fair_db.app, fair_db.owner, keys, signer, PUBLIC_URL, ["ISSUED", "ISSUED"]
    )
    retried, untouched = (r.record_id for r in issued.records)
    # Its invitation failed for good long ago: the link it would carry has run out.
    await fair_db.owner.execute("UPDATE records SET state = 'FAILED' WHERE id = $1", retried)
    await fair_db.owner.execute(
        "UPDATE credentials SET claim_expires_at = now() - interval '1 day' WHERE batch_id = $1",
        issued.batch_id,
    )
    async with tenant_transaction(fair_db.app, service_scope(issued.tenant_id)) as conn:
        assert await commands.retry_failed(conn, issued.batch_id, claim_ttl=3600) == 1
    expiries = dict(
        await fair_db.owner.fetch(
            "SELECT record_id, claim_expires_at > now() FROM credentials WHERE batch_id = $1",
            issued.batch_id,
        )
    )
    assert expiries == {retried: True, untouched: False}
