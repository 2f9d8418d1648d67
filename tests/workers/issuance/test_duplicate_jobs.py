"""Two jobs for one record in one worker at once: the record is invited once.

A job is published twice when a relay window's commit is lost after the broker confirmed it
(a database outage) or when the sweeper takes a slow record for a lost one. Both jobs can
reach one worker in different groups; the second group must not read the record between the
first one's issue transaction and its stamps, and send the invitation again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import asyncpg

from credbatch.config import Settings
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

RECORDS = 40
TWICE = 15


async def test_a_record_in_hand_is_not_worked_on_by_a_second_group(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, RECORDS, mediums=("EMAIL",), certificate=False)
    # Queued before the worker starts, so it receives them all at once: groups of 25, the
    # second and third holding the second jobs of the first group's records, run beside it.
    published = replace(arranged, record_ids=arranged.record_ids + arranged.record_ids[:TWICE])
    await publish_jobs(worker_settings, published)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": RECORDS}
    wanted = {row["email"] for row in arranged.rows}
    mails = Counter(r for recipients, _ in sinks.smtp.messages for r in recipients if r in wanted)
    assert set(mails) == wanted
    assert sorted(holder for holder, n in mails.items() if n > 1) == []
