"""A reminder step's channels are taken before they are sent: a second take of the same step
(a job delivered again, a second worker) gets nothing, and a channel given back after a failed
attempt can be taken again."""

from __future__ import annotations

import uuid

from credbatch.batches import reminders
from credbatch.schema.model import Medium
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.dispatch import FairDb
from tests.workers.relay.test_reminder_claim import invited_batch

BOTH = frozenset({Medium.EMAIL, Medium.SMS})


async def _take(
    fair: FairDb, tenant: uuid.UUID, asked: list[reminders.Channels]
) -> dict[uuid.UUID, frozenset[Medium]]:
    async with tenant_transaction(fair.app, service_scope(tenant)) as conn:
        return await reminders.take(conn, tenant, asked)


async def test_a_step_s_channels_are_taken_once(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    first, second = await invited_batch(fair_db, tenant, 2, mediums=("EMAIL", "SMS"))

    taken = await _take(fair_db, tenant, [(first, 1, BOTH), (second, 1, frozenset({Medium.SMS}))])
    again = await _take(fair_db, tenant, [(first, 1, BOTH), (second, 1, BOTH)])
    other_step = await _take(fair_db, tenant, [(first, 2, BOTH)])

    assert taken == {first: BOTH, second: frozenset({Medium.SMS})}
    assert again == {first: frozenset(), second: frozenset({Medium.EMAIL})}
    assert other_step == {}  # not the record's next step: nothing to take


async def test_a_channel_given_back_is_taken_again(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    (record,) = await invited_batch(fair_db, tenant, 1, mediums=("EMAIL", "SMS"))
    await _take(fair_db, tenant, [(record, 1, BOTH)])

    async with tenant_transaction(fair_db.app, service_scope(tenant)) as conn:
        await reminders.give_back(conn, tenant, [(record, 1, frozenset({Medium.EMAIL}))])
    retaken = await _take(fair_db, tenant, [(record, 1, BOTH)])

    assert retaken == {record: frozenset({Medium.EMAIL})}


async def test_another_tenant_s_step_is_not_taken(fair_db: FairDb) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    (record,) = await invited_batch(fair_db, other, 1)

    email = frozenset({Medium.EMAIL})
    assert await _take(fair_db, tenant, [(record, 1, email)]) == {}
    assert await _take(fair_db, other, [(record, 1, email)]) == {record: email}
