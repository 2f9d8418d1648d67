"""The dispatcher loop: claim due deliveries, send each, record what happened.

Delivery guarantee: at least once, nothing lost. A delivery row exists from the commit of the
change that raised its event (the ``*_webhook_events`` triggers, credbatch/db/triggers) until
it succeeds or gives up. A claim leases it (``webhook_lease_seconds``, longer than the request
timeout) and counts the attempt; the result is written after the HTTP exchange. A dispatcher
that dies between the two leaves the delivery PENDING, due again when the lease runs out, so
another dispatcher (or this one restarted) sends it again, with the same ``webhook-id``:
receivers drop duplicates by that id. That is the one way an event reaches a receiver twice
without a redelivery having been asked for.

Several dispatchers can run: the claim skips rows and endpoints another holds (SKIP LOCKED),
and counts leases per endpoint so an endpoint never has more than
``webhook_endpoint_concurrency`` requests in flight across all of them.

Signing secrets are stored sealed; the dispatcher opens an endpoint's live ones with the
webhook KEK for each attempt and keeps none. A secret it cannot open (sealed under another
key, or stored in plain text before secrets were sealed) makes the attempt fail, to be
retried, with the reason in the delivery's last error and the key ids in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import httpx

from credbatch.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_DURATION
from credbatch.tenancy import service_scope, tenant_transaction
from credbatch.webhooks import signing
from credbatch.webhooks.addresses import AddressRefused, check_target
from credbatch.webhooks.sealing import SecretBox, SecretUnsealError
from workers.webhooks import repository
from workers.webhooks.policy import Verdict, decide, retry_after_seconds
from workers.webhooks.repository import Claimed, Job
from workers.webhooks.sender import Reply, post

log = logging.getLogger(__name__)
DISPATCHER_USER = "system:webhooks"


@dataclass(frozen=True)
class DispatchConfig:
    schedule: Sequence[float]
    timeout: float
    lease_seconds: float
    per_endpoint: int
    concurrency: int
    poll_interval: float
    disable_after: float
    development: bool


class Dispatcher:
    """Delivers every tenant's due webhook deliveries until told to stop."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: httpx.AsyncClient,
        config: DispatchConfig,
        *,
        claim_pool: asyncpg.Pool,
        box: SecretBox,
    ) -> None:
        """``pool`` connects as the application role (each delivery in its tenant's
        transaction); ``claim_pool`` as the webhooks role, the only one allowed the
        cross-tenant claim; ``box`` opens the sealed signing secrets."""
        self._pool = pool
        self._claim_pool = claim_pool
        self._box = box
        self._client = client
        self._config = config
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and deliver until ``stop``; deliveries in flight are finished first."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                claimed = await self._claim_safely()
                for item in claimed:
                    task = asyncio.create_task(self._deliver(item))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                if claimed and len(self._in_flight) < self._config.concurrency:
                    continue
                # Wake for a stop, a freed slot, or the next poll.
                await asyncio.wait(
                    {stopping, *self._in_flight},
                    timeout=self._config.poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            stopping.cancel()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _claim_safely(self) -> list[Claimed]:
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            return []
        try:
            return await repository.claim(
                self._claim_pool, free, self._config.per_endpoint, self._config.lease_seconds
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # Nothing is lost: due rows stay due; try again after the poll interval.
            log.warning("claiming webhook deliveries failed: %s", error)
            return []

    async def _deliver(self, item: Claimed) -> None:
        try:
            await self._deliver_one(item)
        except Exception:
            # The lease runs out and the delivery is tried again: logged, never lost.
            log.exception("webhook delivery %s failed unexpectedly", item.delivery_id)

    async def _deliver_one(self, item: Claimed) -> None:
        scope = service_scope(item.tenant_id, DISPATCHER_USER)
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            job = await repository.load(conn, item.delivery_id)
        if job is None:
            return
        if job.endpoint_disabled:
            async with tenant_transaction(self._pool, scope) as conn:
                await repository.failed(conn, job, None, "endpoint disabled")
            return
        started = time.perf_counter()
        reply = await self._send(job)
        WEBHOOK_DELIVERY_DURATION.record(time.perf_counter() - started)
        decision = decide(
            job.attempt,
            self._config.schedule,
            reply.status,
            reply.error,
            retry_after_seconds(reply.retry_after),
        )
        # Counted before the outcome commits: an attempt made is an attempt, stored or not.
        WEBHOOK_DELIVERIES.add(1, {"credbatch.webhook.outcome": decision.verdict.value})
        async with tenant_transaction(self._pool, scope) as conn:
            await repository.lock_endpoint(conn, job.endpoint_id)
            if decision.verdict is Verdict.SUCCEEDED:
                assert reply.status is not None
                await repository.succeeded(conn, job, reply.status)
                return
            if decision.verdict is Verdict.GONE:
                await repository.failed(conn, job, reply.status, decision.error)
                await repository.disable(conn, job.endpoint_id, decision.error)
                log.info("webhook endpoint %s answered 410; disabled", job.endpoint_id)
                return
            if decision.verdict is Verdict.RETRY:
                await repository.retry_later(
                    conn, job, reply.status, decision.error, decision.delay
                )
            else:
                await repository.failed(conn, job, reply.status, decision.error)
            failing = await repository.failing_for(conn, job.endpoint_id)
            if failing >= timedelta(seconds=self._config.disable_after):
                reason = (
                    f"every delivery failed for {_span(self._config.disable_after)}; "
                    f"last: {decision.error}"
                )
                await repository.disable(conn, job.endpoint_id, reason)
                log.info("webhook endpoint %s failing too long; disabled", job.endpoint_id)

    async def _send(self, job: Job) -> Reply:
        try:
            # Resolved and checked at every attempt: the name may point elsewhere by now.
            target = await check_target(job.url, development=self._config.development)
        except AddressRefused as error:
            return Reply(None, error=f"address refused: {error}")
        if not job.secrets:
            return Reply(None, error="the endpoint has no live signing secret")
        try:
            secrets = self._open(job)
        except SecretUnsealError as error:
            log.error("webhook delivery %s: %s", job.delivery_id, error)
            return Reply(None, error="a signing secret of the endpoint cannot be opened")
        timestamp = int(time.time())
        headers = signing.headers(secrets, job.event_id, timestamp, job.body)
        return await post(self._client, target, headers, job.body, self._config.timeout)

    def _open(self, job: Job) -> list[str]:
        """The endpoint's live secrets in plain text, for this attempt only."""
        opened = []
        for stored in job.secrets:
            if stored.sealed is None:
                raise SecretUnsealError(
                    f"webhook secret {stored.id} is stored unencrypted; run "
                    "`credbatch webhooks rewrap-secrets` to seal it"
                )
            opened.append(self._box.open(job.tenant_id, job.endpoint_id, stored.id, stored.sealed))
        return opened


def _span(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} days"
    return f"{seconds:g} s"
