"""BatchStatusService behaviour, free of protos: every read and command on batches.

Visibility is row-level security's alone (each unit of work runs in a tenant_transaction with
the caller's scope): a batch the caller may not see reads as absent and is NOT_FOUND with the
same message as one that does not exist.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from credbatch import audit
from credbatch.auth.roles import ADMINS
from credbatch.batches import commands, contact, repository, resend, revocation
from credbatch.batches.model import (
    TERMINAL_BATCH_STATES,
    BatchFilter,
    BatchState,
    BatchView,
    PagePosition,
    RecordState,
)
from credbatch.config import Settings
from credbatch.db.retry import in_transaction_with_retry
from credbatch.errors import FailedPrecondition, NotFound, PermissionDenied
from credbatch.schema.model import Medium
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from services.batch_status.contact import (
    ContactRequest,
    not_correctable,
    record_not_found,
    validated_change,
)
from services.batch_status.records import RecordPage, fetch_records
from services.batch_status.report import report_chunks
from services.batch_status.resend import ResendRequest, records_not_found, request_reused
from services.batch_status.revoke import RevokeRequest, refused
from services.batch_status.watch import WatchHub, WatchLimits

# Records per transaction of a cancel or retry round: a short transaction, so the workers and
# the relay that meet the rounds' locks wait little.
CHUNK = 5000
# How long cancel and retry keep taking records others held, and the pause between rounds.
SETTLE = 1.0
ROUND_PAUSE = 0.02


def not_found(batch_id: uuid.UUID) -> NotFound:
    # One message for "does not exist" and "not yours": nothing tells them apart.
    return NotFound(
        f"batch batches/{batch_id} not found",
        reason="BATCH_NOT_FOUND",
        metadata={"resource": "batch"},
    )


@dataclass(frozen=True)
class Page:
    """One page of the history and where the next one starts (None on the last)."""

    batches: list[BatchView]
    next_position: PagePosition | None


class BatchStatus:
    """Reads and commands on batches for the caller in ``scope``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        public_url: str,
        watch_limits: WatchLimits | None = None,
        *,
        claim_ttl: float = Settings.claim_ttl,
        default_region: str = Settings.default_region,
    ) -> None:
        self._pool = pool
        self._public_url = public_url
        self._watches = WatchHub(watch_limits or WatchLimits())
        # A resent or corrected record's claim link works this long from the resend.
        self._claim_ttl = claim_ttl
        # How a corrected phone without +country code is read, as the upload reads it.
        self._default_region = default_region

    async def get(self, scope: TenantScope, batch_id: uuid.UUID) -> BatchView:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            view = await repository.get_batch(conn, batch_id)
        if view is None:
            raise not_found(batch_id)
        return view

    async def list(
        self,
        scope: TenantScope,
        batch_filter: BatchFilter,
        after: PagePosition | None,
        size: int,
    ) -> Page:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            # One more than asked tells whether a next page exists.
            views = await repository.list_batches(conn, batch_filter, after, size + 1)
        if len(views) <= size:
            return Page(views, None)
        views = views[:size]
        return Page(views, PagePosition(views[-1].create_time, views[-1].id))

    async def report(
        self, scope: TenantScope, batch_id: uuid.UUID, states: Sequence[RecordState]
    ) -> AsyncIterator[bytes]:
        await self.get(scope, batch_id)  # NOT_FOUND before the first byte
        async for chunk in report_chunks(self._pool, scope, batch_id, states, self._public_url):
            yield chunk

    async def records(
        self,
        scope: TenantScope,
        batch_id: uuid.UUID,
        states: frozenset[RecordState],
        after: int,
        size: int,
    ) -> RecordPage:
        """A page of the batch's records in row order (see records.fetch_records)."""
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            if await repository.get_batch(conn, batch_id) is None:
                raise not_found(batch_id)
            return await fetch_records(conn, batch_id, states, after, size, self._public_url)

    def watch(self, scope: TenantScope, batch_id: uuid.UUID) -> AsyncGenerator[BatchView, None]:
        """The batch now and after each change (see watch.WatchHub).

        The first read is the caller's own (NOT_FOUND when it may not see the batch); the
        shared poll then reads as the tenant's service, which sees every batch of the tenant.
        """
        return self._watches.watch(
            (scope.tenant_id, scope.user_id),
            (scope.tenant_id, batch_id),
            lambda: self.get(scope, batch_id),
            lambda: self.get(service_scope(scope.tenant_id), batch_id),
        )

    async def _for_change(
        self, conn: asyncpg.Connection, scope: TenantScope, batch_id: uuid.UUID
    ) -> BatchView:
        view = await repository.get_batch(conn, batch_id)
        if view is None:
            raise not_found(batch_id)
        # An issuer that sees a batch only as an observer of its department may not change it.
        if not scope.roles & ADMINS and view.creator != scope.user_id:
            raise PermissionDenied(
                f"only the creator, org_admin or service may change batches/{batch_id}",
                reason="NOT_BATCH_CREATOR",
            )
        return view

    async def cancel(self, scope: TenantScope, batch_id: uuid.UUID) -> BatchView:
        """Cancel the batch and its unprocessed records; a finished batch is returned unchanged.

        The batch is marked CANCELLED first, in a short transaction of its own: from then on
        the relay dispatches none of its records and workers issue and invite none. Its open
        records are then cancelled in id order, skipping those a relay window or a worker
        holds (never waiting for them), round after round until none is left or ``SETTLE``
        seconds passed; the sweeper closes what a rolled-back relay window leaves behind.
        """

        async def mark(conn: asyncpg.Connection) -> BatchView | None:
            view = await self._for_change(conn, scope, batch_id)
            if view.state in TERMINAL_BATCH_STATES:
                return view
            await commands.mark_cancelled(conn, batch_id)
            return None

        # Each transaction writes nothing else: safe to run again on a conflict.
        unchanged = await in_transaction_with_retry(self._pool, scope, mark)
        if unchanged is not None:
            return unchanged

        async def close(conn: asyncpg.Connection) -> bool:
            await commands.cancel_open_records(conn, batch_id, CHUNK)
            return await commands.open_records_left(conn, batch_id)

        await self._rounds(scope, close)
        return await self.get(scope, batch_id)

    async def retry(self, scope: TenantScope, batch_id: uuid.UUID) -> BatchView:
        """Queue the FAILED records again; without any, nothing changes.

        Records a worker holds are skipped and taken in a later round (as for ``cancel``), so
        the call never waits for a worker's transaction.
        """

        async def first(conn: asyncpg.Connection) -> BatchView | bool:
            view = await self._for_change(conn, scope, batch_id)
            if view.state is BatchState.CANCELLED:
                raise FailedPrecondition(
                    f"batches/{batch_id} is cancelled; its records cannot be retried",
                    reason="BATCH_CANCELLED",
                )
            if view.counts.failed == 0:
                return view
            return await again(conn)

        async def again(conn: asyncpg.Connection) -> bool:
            await commands.retry_failed(conn, batch_id, CHUNK, claim_ttl=self._claim_ttl)
            return await commands.failed_records_left(conn, batch_id)

        # As for cancel: the relay publishes only what a round committed.
        outcome = await in_transaction_with_retry(self._pool, scope, first)
        if isinstance(outcome, BatchView):
            return outcome
        if outcome:
            await self._rounds(scope, again)
        return await self.get(scope, batch_id)

    async def _rounds(
        self, scope: TenantScope, round_: Callable[[asyncpg.Connection], Awaitable[bool]]
    ) -> None:
        """Run ``round_`` (one transaction each) while it says work is left, for ``SETTLE`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE
        while await in_transaction_with_retry(self._pool, scope, round_):
            if loop.time() >= deadline:
                return
            # What is left is held by a relay window or a worker, or the next chunk.
            await asyncio.sleep(ROUND_PAUSE)

    async def revoke(self, scope: TenantScope, request: RevokeRequest) -> tuple[BatchView, int]:
        """Revoke issued credentials of the batch; the batch after it and how many were revoked.

        INVALID_ARGUMENT, with nothing revoked, when an id names no record of the batch or one
        without an issued credential.
        """

        async def unit(conn: asyncpg.Connection) -> int:
            await self._for_change(conn, scope, request.batch_id)
            done = await revocation.revoke_records(
                conn, request.batch_id, request.ids, request.reason
            )
            if isinstance(done, revocation.Unrevocable):
                # Raising rolls the transaction back, and the record locks go with it.
                raise refused(done)
            return done

        # Bits and record states commit together; on a conflict the whole unit runs again.
        revoked = await in_transaction_with_retry(self._pool, scope, unit)
        return await self.get(scope, request.batch_id), revoked

    async def resend(
        self, scope: TenantScope, request: ResendRequest
    ) -> tuple[BatchView, resend.Resent]:
        """Send the invitations of INVITED records again (see credbatch.batches.resend).

        NOT_FOUND, with nothing resent, when an id names no record of the batch;
        FAILED_PRECONDITION for a cancelled batch.
        """

        async def unit(conn: asyncpg.Connection) -> resend.Resent:
            view = await self._for_change(conn, scope, request.batch_id)
            done = await resend.resend_invitations(
                conn,
                request.batch_id,
                request.ids,
                request.request_id,
                batch_cancelled=view.state is BatchState.CANCELLED,
                claim_ttl=self._claim_ttl,
            )
            # Raising rolls the transaction back: the request id is not taken either.
            if isinstance(done, resend.UnknownRecords):
                raise records_not_found(request.batch_id, done)
            if isinstance(done, resend.ReusedRequest):
                raise request_reused(done)
            if isinstance(done, resend.BatchCancelled):
                raise FailedPrecondition(
                    f"batches/{request.batch_id} is cancelled; its invitations are not resent",
                    reason="BATCH_CANCELLED",
                )
            return done

        # Records, offers, request id and batch commit together; on a conflict all runs again.
        done = await in_transaction_with_retry(self._pool, scope, unit)
        return await self.get(scope, request.batch_id), done

    async def update_contact(
        self, scope: TenantScope, request: ContactRequest
    ) -> tuple[BatchView, contact.Reinvited]:
        """Correct one record's contact and invite it again (see credbatch.batches.contact).

        INVALID_ARGUMENT for a value the upload would refuse; NOT_FOUND for a record the
        caller cannot see; FAILED_PRECONDITION for a cancelled batch or a record in a state
        that is not invited again.
        """

        async def unit(conn: asyncpg.Connection) -> contact.Reinvited:
            view = await self._for_change(conn, scope, request.batch_id)
            change = validated_change(
                request, {Medium(m) for m in view.mediums}, self._default_region
            )
            if view.state is BatchState.CANCELLED:
                raise FailedPrecondition(
                    f"batches/{request.batch_id} is cancelled; its records are not invited again",
                    reason="BATCH_CANCELLED",
                )
            done = await contact.update_contact(
                conn, scope.tenant_id, change, claim_ttl=self._claim_ttl
            )
            if isinstance(done, contact.UnknownRecord):
                raise record_not_found(request.batch_id, request.record_id)
            if isinstance(done, contact.NotCorrectable):
                raise not_correctable(request.record_id, done)
            # Which fields, never their values: the entry commits with the change.
            await audit.record(
                conn,
                scope,
                audit.Action.RECORD_CONTACT_UPDATE,
                resource,
                details={"fields": list(done.changed), "from_state": done.previous.value},
            )
            return done

        resource = f"batches/{request.batch_id}/records/{request.record_id}"
        async with audit.failures_recorded(
            self._pool, scope, audit.Action.RECORD_CONTACT_UPDATE, resource
        ):
            done = await in_transaction_with_retry(self._pool, scope, unit)
        return await self.get(scope, request.batch_id), done
