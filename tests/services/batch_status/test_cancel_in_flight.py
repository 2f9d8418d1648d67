"""CancelBatch and RetryFailedRecords on a batch in full flight: they return on the first call.

The relay and a worker run as processes on a private database; the batch has 30,000 records,
the relay's window holds claimed records while it publishes and the worker's issue
transactions hold theirs. The commands wait for neither. After a cancel the invitations of the
batch grow by at most what the worker had in flight when the cancel committed: the groups
that had already read the batch's state (at most its prefetch) and its sends under way (at
most its concurrency). After a retry every record ends invited, each with one credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from credbatch.batches.model import BatchState
from credbatch.config import Settings
from credbatch.tenancy import service_scope
from services.batch_status.status import SETTLE, BatchStatus
from tests.faults.harness import (
    PREFETCH,
    System,
    system_for_faults,
    wait_terminal,
)
from tests.fixtures.batches import record_states
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import Sinks

RECORDS = 30_000
# A command's rounds stop after SETTLE seconds whatever is still held. Ten times that is its
# deadline here, room for a loaded machine; how long it really takes belongs to benchmarks.
DEADLINE = 10 * SETTLE
# Seconds the retried batch has to complete: generous, since on a machine shared with other
# work the records are issued several times slower than on an idle one.
COMPLETE_WITHIN = 300.0


@pytest_asyncio.fixture(loop_scope="session")
async def system(fair_db: FairDb, worker_settings: Settings, sinks: Sinks) -> AsyncIterator[System]:
    """The 30,000-record batch with its relay and worker (not started yet)."""
    async with system_for_faults(worker_settings, fair_db, sinks, RECORDS) as running:
        yield running


def batch_status(system: System) -> BatchStatus:
    return BatchStatus(system.fair.app, system.settings.public_url)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_cancel_in_full_flight_returns_quickly_and_stops_invitations(system: System) -> None:
    scope = service_scope(system.batch.tenant_id)
    loop = asyncio.get_running_loop()
    await system.start()
    await system.progressed(RECORDS // 10, timeout=60)
    started = loop.time()
    view = await batch_status(system).cancel(scope, system.batch.batch_id)
    took = loop.time() - started
    mailed_at_cancel = sum(system.mails().values())
    assert view.state is BatchState.CANCELLED
    assert took < DEADLINE, f"CancelBatch took {took:.2f} s"
    # Let everything in flight settle (sends, outcomes, the relay's last window).
    await asyncio.sleep(3.0)
    mailed_after = sum(system.mails().values())
    bound = PREFETCH + system.settings.worker_concurrency
    grew = mailed_after - mailed_at_cancel
    print(
        f"cancel in flight: {took:.2f} s, {mailed_at_cancel} mails at cancel, "
        f"+{grew} after (bound {bound})"
    )
    assert grew <= bound, f"{grew} invitations after the cancel, bound {bound}"
    # Whatever the cancel's rounds could not reach, the sweeper closes.
    await asyncio.sleep(system.settings.stuck_after * 2)
    open_left = await system.fair.owner.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1"
        " AND state IN ('PENDING', 'QUEUED', 'ISSUED')",
        system.batch.batch_id,
    )
    assert open_left == 0, f"{open_left} records still open"
    assert sum(system.mails().values()) == mailed_after


@pytest.mark.slow
@pytest.mark.timeout(COMPLETE_WITHIN + 120)
async def test_retry_in_full_flight_returns_quickly_and_every_record_ends_invited(
    system: System,
) -> None:
    status = batch_status(system)
    scope = service_scope(system.batch.tenant_id)
    owner = system.fair.owner
    refused = system.sinks.smtp.handler.refuse
    # The mail server refuses every third holder (550) until the retry.
    for row in system.batch.rows[::3]:
        refused[row["email"].lower()] = "Mailbox unavailable"
    loop = asyncio.get_running_loop()
    await system.start()
    await system.progressed(RECORDS // 10, timeout=60)
    failed = await owner.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'FAILED'",
        system.batch.batch_id,
    )
    assert failed > 100, "too few refused records to retry"
    refused.clear()
    started = loop.time()
    view = await status.retry(scope, system.batch.batch_id)
    took = loop.time() - started
    assert view.state is BatchState.IN_PROGRESS
    assert took < DEADLINE, f"RetryFailedRecords took {took:.2f} s"
    print(f"retry in flight of {failed} failed records: {took:.2f} s")
    # Failures after the retry's rounds (sends refused before it) are retried again.
    batch_id = system.batch.batch_id
    while (state := await wait_terminal(owner, batch_id, COMPLETE_WITHIN)) != "COMPLETED":
        assert state == "COMPLETED_WITH_ERRORS", state
        await status.retry(scope, batch_id)
    assert await record_states(owner, system.batch.batch_id) == {"INVITED": RECORDS}
    credentials = await owner.fetchval(
        "SELECT count(DISTINCT record_id) FROM credentials WHERE batch_id = $1"
        " HAVING count(*) = count(DISTINCT record_id)",
        system.batch.batch_id,
    )
    assert credentials == RECORDS
