"""Statement triggers stay linear on a big statement after small ones on the same connection.

PL/pgSQL keeps the plan of a trigger's query from its first run in the backend, sized by the
transition tables it saw then. A plan made for a 10-record update and kept for a 20,000-record
one used to join old_rows and new_rows by nested loop: 94 s for one UPDATE. Each statement
below runs on one pooled connection after small ones that fix the plans small, under a
statement timeout far above a linear run (well under a second) and far below a quadratic one.
"""

from __future__ import annotations

import uuid

import asyncpg

from tests.fixtures.batches import insert_batch, record_states
from tests.fixtures.dispatch import FairDb

BIG, SMALL, WARM_UPS = 20_000, 10, 6
TIMEOUT = "15s"


async def queued_batch(conn: asyncpg.Connection, tenant: uuid.UUID, count: int) -> uuid.UUID:
    arranged = await insert_batch(conn, tenant, states=["QUEUED"] * count, mediums=("EMAIL",))
    return arranged.batch_id


async def move(conn: asyncpg.Connection, batch_id: uuid.UUID, state: str) -> None:
    await conn.execute("UPDATE records SET state = $2 WHERE batch_id = $1", batch_id, state)


async def test_big_updates_after_small_ones_stay_linear(fair_db: FairDb) -> None:
    tenant = uuid.uuid4()
    async with fair_db.owner.acquire() as conn:
        small = [await queued_batch(conn, tenant, SMALL) for _ in range(WARM_UPS)]
        big = await queued_batch(conn, tenant, BIG)
        # Any endpoint for record events makes webhook_record_events do its join.
        await conn.execute(
            "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types)"
            " VALUES ($1, $2, 'https://hooks.example.test/', '{record.failed}')",
            tenant,
            uuid.uuid4(),
        )
        # Small statements first: out of QUEUED (in-flight rows), into PENDING (dispatch
        # keys), into FAILED (record events), so each trigger's plan is made for 10 rows.
        for batch_id in small:
            await move(conn, batch_id, "PENDING")
            await move(conn, batch_id, "QUEUED")
            await move(conn, batch_id, "FAILED")
        await conn.execute(f"SET statement_timeout = '{TIMEOUT}'")
        try:
            await move(conn, big, "PENDING")
            await move(conn, big, "QUEUED")
            await move(conn, big, "FAILED")
        finally:
            await conn.execute("RESET statement_timeout")
    assert await record_states(fair_db.owner, big) == {"FAILED": BIG}
    in_flight = await fair_db.owner.fetchval(
        "SELECT count(*) FROM dispatch_in_flight WHERE tenant_id = $1", tenant
    )
    assert in_flight == 0
    events = await fair_db.owner.fetchval(
        "SELECT count(*) FROM webhook_events WHERE tenant_id = $1", tenant
    )
    assert events == BIG + WARM_UPS * SMALL
