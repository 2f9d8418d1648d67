"""A database outage mid-batch sends nothing twice.

The workers (and the relay) reach PostgreSQL through a TCP proxy the test cuts: new
connections are refused and open ones dropped, as a restart of the server looks from the
client's side, without stopping the machine's shared cluster. The SMTP sink stays up, so
invitations already rendered keep being accepted while their outcomes cannot be written: a
worker must hold those outcomes until the database is back (``workers.issuance.durable``)
rather than let the jobs be retried, whose redelivery would send the invitations again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from credbatch.config import Settings
from tests.faults.harness import (
    Figures,
    arrange_system,
    assert_completed_once,
    fault_settings,
    wait_terminal,
)
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import (
    Arranged,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    spawn_worker,
    wait_for_batch,
)
from tests.fixtures.proxy import TcpProxy, via_proxy

pytestmark = [pytest.mark.slow]

# Retries of jobs that met the outage before sending anything must outlast it, as the
# default delays (5, 30, 120, 600 s) outlast a restart by far; shorter here to keep it quick.
OUTAGE_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)
OUTAGE_MAX_ATTEMPTS = 6


@contextlib.asynccontextmanager
async def database_proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    target = urlsplit(settings.database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        with contextlib.suppress(AssertionError):  # already cut
            await proxy.cut()


def through(settings: Settings, proxy: TcpProxy) -> Settings:
    """``settings`` with every database URL through the proxy."""
    return settings.with_overrides(
        database_url=via_proxy(settings.database_url, proxy.port),
        app_database_url=via_proxy(settings.app_database_url, proxy.port),
        relay_database_url=via_proxy(settings.relay_database_url, proxy.port),
        refresher_database_url=via_proxy(settings.refresher_database_url, proxy.port),
    )


class InConversation:
    """Counts the SMTP sink's sends between their first recipient and the end of their data:
    the sends mid-conversation at any moment. ``on_first_data`` runs inside the first
    message's DATA, before the server accepts it."""

    def __init__(
        self, sinks: Sinks, on_first_data: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.now = 0
        self._handler = sinks.smtp.handler
        self._rcpt = self._handler.handle_RCPT
        self._data = self._handler.handle_DATA
        self._on_first_data = on_first_data
        # aiosmtpd looks the hooks up on the handler when a session starts.
        self._handler.handle_RCPT = self._count_rcpt  # type: ignore[method-assign]
        self._handler.handle_DATA = self._count_data  # type: ignore[method-assign]

    async def _count_rcpt(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = await self._rcpt(server, session, envelope, address, rcpt_options)
        if reply.startswith("250") and len(envelope.rcpt_tos) == 1:
            self.now += 1
        return reply

    async def _count_data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            if self._on_first_data is not None:
                first, self._on_first_data = self._on_first_data, None
                await first()
            return await self._data(server, session, envelope)
        finally:
            self.now -= 1

    def close(self) -> None:
        self._handler.handle_RCPT = self._rcpt  # type: ignore[method-assign]
        self._handler.handle_DATA = self._data  # type: ignore[method-assign]


class CutAtFirstSend:
    """Cuts the database inside the first invitation's DATA, before the sink accepts it: that
    send is mid-conversation, and those of its group go on with the database gone."""

    def __init__(self, sinks: Sinks, proxy: TcpProxy) -> None:
        self.done = asyncio.Event()
        self._proxy = proxy
        self._counter = InConversation(sinks, self._cut)

    async def _cut(self) -> None:
        await self._proxy.cut()
        self.done.set()

    async def __aenter__(self) -> CutAtFirstSend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._counter.close()


def mails_per_holder(sinks: Sinks, arranged: Arranged) -> Counter[str]:
    wanted = {row["email"] for row in arranged.rows}
    return Counter(r for recipients, _ in sinks.smtp.messages for r in recipients if r in wanted)


async def unstamped_but_mailed(
    owner_pool: asyncpg.Pool, arranged: Arranged, sinks: Sinks
) -> set[str]:
    """Holders mailed whose record holds no stamp of it: what a redelivery sends again."""
    rows = await owner_pool.fetch(
        "SELECT email FROM records r WHERE batch_id = $1 AND email_sent_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM record_sends s"
        "                 WHERE s.record_id = r.id AND s.medium = 'EMAIL')",
        arranged.batch_id,
    )
    return {row["email"] for row in rows} & set(mails_per_holder(sinks, arranged))


async def arrange_outage(
    owner_pool: asyncpg.Pool, settings: Settings, records: int = 60
) -> tuple[Arranged, Settings]:
    arranged = await arrange_batch(owner_pool, records, mediums=("EMAIL",), certificate=False)
    await publish_jobs(settings, arranged)
    return arranged, settings.with_overrides(
        retry_delays=OUTAGE_RETRY_DELAYS, max_attempts=OUTAGE_MAX_ATTEMPTS
    )


async def assert_invited_once(owner_pool: asyncpg.Pool, arranged: Arranged, sinks: Sinks) -> None:
    assert await wait_for_batch(owner_pool, arranged.batch_id, 60) == "COMPLETED"
    mails = mails_per_holder(sinks, arranged)
    assert set(mails) == {row["email"] for row in arranged.rows}, "a holder got no invitation"
    twice = sorted(holder for holder, n in mails.items() if n > 1)
    assert twice == [], f"{len(twice)} holders mailed more than once"
    stamped = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'INVITED'"
        " AND email_sent_at IS NOT NULL",
        arranged.batch_id,
    )
    assert stamped == len(arranged.record_ids)


async def test_sends_accepted_while_the_database_is_cut_are_not_sent_again(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged, settings = await arrange_outage(owner_pool, worker_settings)
    async with (
        database_proxy(settings) as proxy,
        CutAtFirstSend(sinks, proxy) as cut,
        running_worker(through(settings, proxy)),
    ):
        await asyncio.wait_for(cut.done.wait(), 30)
        await asyncio.sleep(2)
        # The groups that sent are still holding their outcomes, unacked.
        assert await unstamped_but_mailed(owner_pool, arranged, sinks)
        await proxy.restore()
        await assert_invited_once(owner_pool, arranged, sinks)


async def test_stopped_during_the_outage_writes_within_the_grace(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    """SIGTERM while outcomes are held: the worker waits (up to its grace) for the database
    and writes them before it stops; another worker then finishes the batch."""
    arranged, settings = await arrange_outage(owner_pool, worker_settings)
    assert settings.grace_seconds >= 4
    loop = asyncio.get_running_loop()
    async with database_proxy(settings) as proxy, CutAtFirstSend(sinks, proxy) as cut:
        async with running_worker(through(settings, proxy)):
            await asyncio.wait_for(cut.done.wait(), 30)
            await asyncio.sleep(0.5)
            held = await unstamped_but_mailed(owner_pool, arranged, sinks)
            assert held
            loop.call_later(1.5, lambda: asyncio.ensure_future(proxy.restore()))
            stopping = loop.time()
        took = loop.time() - stopping
        assert took < settings.grace_seconds, f"stopped after {took:.1f} s"
        # Written before the worker stopped.
        assert not await unstamped_but_mailed(owner_pool, arranged, sinks) & held
    async with running_worker(settings):
        await assert_invited_once(owner_pool, arranged, sinks)


async def test_past_the_grace_only_the_unrecorded_sends_go_again(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    """SIGTERM while outcomes are held and the database stays away past the grace: the worker
    stops on time, and its redelivered jobs send again exactly the sends it could not record."""
    arranged, settings = await arrange_outage(
        owner_pool, worker_settings.with_overrides(grace_seconds=1.0)
    )
    loop = asyncio.get_running_loop()
    async with database_proxy(settings) as proxy, CutAtFirstSend(sinks, proxy) as cut:
        async with running_worker(through(settings, proxy)):
            await asyncio.wait_for(cut.done.wait(), 30)
            await asyncio.sleep(0.5)
            stopping = loop.time()
        took = loop.time() - stopping
        assert took < settings.grace_seconds + 2, f"stopped after {took:.1f} s"
        await proxy.restore()
        again = await unstamped_but_mailed(owner_pool, arranged, sinks)
        assert again
    async with running_worker(settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id, 60) == "COMPLETED"
    mails = mails_per_holder(sinks, arranged)
    assert set(mails) == {row["email"] for row in arranged.rows}
    assert {holder for holder, n in mails.items() if n > 1} == again
    assert max(mails.values()) == 2


RECORDS = 3000
OUTAGE_SECONDS = 10.0
WORKERS = 2


@pytest.mark.timeout(240)
async def test_database_cut_for_ten_seconds_mid_batch(
    fair_db: FairDb, worker_settings: Settings, sinks: Sinks
) -> None:
    """Relay and two workers as processes; the database cut 10 s once a quarter is done.

    Bound on duplicates: the sends mid-conversation (between recipient and end of data) at
    the cut; the workers stay up, so in fact none is expected. A relay window whose commit the
    cut lost is published again, so two jobs for one record can meet in two workers after the
    cut (the first back from the delay queues): the second finds the record ISSUED within the
    invite lease and leaves it to the first, then finds it INVITED.
    """
    settings = fault_settings(worker_settings, fair_db).with_overrides(
        retry_delays=OUTAGE_RETRY_DELAYS,
        max_attempts=OUTAGE_MAX_ATTEMPTS,
        # The outage is shorter than the sweeper's patience, as a restart is against the
        # default 300 s: a record only waiting for the database is not swept as lost.
        stuck_after=60.0,
    )
    async with database_proxy(settings) as proxy:
        system = await arrange_system(through(settings, proxy), fair_db, sinks, RECORDS)
        sending = InConversation(sinks)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await system.start()
            system.workers += [spawn_worker(system.settings) for _ in range(WORKERS - 1)]
            await system.progressed(RECORDS // 4, timeout=120)
            await proxy.cut()
            mid_conversation = sending.now
            await asyncio.sleep(OUTAGE_SECONDS)
            for process in [*system.workers, *([system.relay] if system.relay else [])]:
                assert process.poll() is None, "a process exited while the database was down"
            await proxy.restore()
            state = await wait_terminal(fair_db.owner, system.batch.batch_id, timeout=180)
            assert state == "COMPLETED"
            took = loop.time() - started
            bound = mid_conversation
            duplicates = await assert_completed_once(fair_db.owner, system, bound)
            print(
                Figures(RECORDS, took, duplicates, bound).line(
                    f"database cut {OUTAGE_SECONDS:.0f} s ({mid_conversation} sends"
                    " mid-conversation at the cut)"
                )
            )
        finally:
            sending.close()
            await system.stop()
