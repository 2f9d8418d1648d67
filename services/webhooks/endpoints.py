"""What the WebhookService does, in domain terms: checks, then the webhooks repository.

Every method runs in one tenant transaction for the caller's scope, so row-level security
decides what exists; role checks happen at the edge (credbatch.auth.rules). Every change is
audited in its transaction (the endpoint's name and which fields changed; never its URL,
which may carry the receiver's own token, nor its description, free text), and a refused
one after its rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import timedelta

import asyncpg

from credbatch import audit
from credbatch.audit import Action
from credbatch.db import idempotency
from credbatch.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from credbatch.paging import PagePosition, decode_token, next_page_token, page_size
from credbatch.tenancy import TenantScope, tenant_transaction
from credbatch.webhooks import addresses, repository
from credbatch.webhooks.model import (
    ENDPOINTS,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointChanges,
    EndpointDraft,
    Page,
    delivery_name,
    endpoint_name,
)
from credbatch.webhooks.sealing import SecretBox

ROTATION_OVERLAP = timedelta(hours=24)
"""How long a replaced secret goes on signing, so receivers can switch without a gap."""
MAX_DESCRIPTION_CHARS = 500
_IDEMPOTENCY_KIND = "webhook_endpoint"
_ENDPOINTS_LIST = "webhookEndpoints"


def _not_found(name: str) -> NotFound:
    return NotFound(f"{name} not found", reason="WEBHOOK_ENDPOINT_NOT_FOUND")


async def check_url(url: str, *, development: bool) -> list[FieldViolation]:
    """Refuse a URL that ``addresses.check_target`` refuses, as every delivery will.

    A name that does not resolve yet is accepted: every delivery resolves and checks again.
    """
    try:
        await addresses.check_target(url, development=development)
    except addresses.NameNotResolved:
        return []
    except addresses.AddressRefused as error:
        return [FieldViolation("webhook_endpoint.url", str(error), "URL_REFUSED")]
    return []


def _description_violations(description: str | None) -> list[FieldViolation]:
    if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
        return [
            FieldViolation(
                "webhook_endpoint.description",
                f"at most {MAX_DESCRIPTION_CHARS} characters",
                "TOO_LONG",
            )
        ]
    return []


def _refuse(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(
            "the webhook endpoint is not valid",
            reason="INVALID_WEBHOOK_ENDPOINT",
            violations=violations,
        )


class WebhookEndpoints:
    """The caller tenant's webhook endpoints and their deliveries."""

    def __init__(self, pool: asyncpg.Pool, *, development: bool, box: SecretBox) -> None:
        """``box`` seals each new signing secret (under ``CREDBATCH_WEBHOOK_KEK``)."""
        self._pool = pool
        self._development = development
        self._box = box

    async def create(
        self,
        scope: TenantScope,
        draft: EndpointDraft,
        violations: list[FieldViolation],
        request_id: str,
    ) -> Endpoint:
        async with audit.failures_recorded(
            self._pool, scope, Action.WEBHOOK_ENDPOINT_CREATE, ENDPOINTS, request_id=request_id
        ):
            if draft.url:
                violations += await check_url(draft.url, development=self._development)
            violations += _description_violations(draft.description)
            _refuse(violations)
            endpoint_id = uuid.uuid4()
            async with tenant_transaction(self._pool, scope) as conn:
                earlier = await idempotency.claim(conn, _IDEMPOTENCY_KIND, request_id, endpoint_id)
                if earlier is not None:
                    # A repeat of a committed request: nothing changes, nothing to audit.
                    found = await repository.get_endpoint(conn, earlier)
                    if found is None:
                        raise _not_found(endpoint_name(earlier))
                    return found
                secret = self._box.new(scope.tenant_id, endpoint_id)
                created = await repository.insert_endpoint(conn, endpoint_id, draft, secret)
                await audit.record(
                    conn,
                    scope,
                    Action.WEBHOOK_ENDPOINT_CREATE,
                    endpoint_name(endpoint_id),
                    details={"event_types": sorted(str(t) for t in created.event_types)},
                    request_id=request_id,
                )
                return created

    async def get(self, scope: TenantScope, endpoint_id: uuid.UUID) -> Endpoint:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            found = await repository.get_endpoint(conn, endpoint_id)
        if found is None:
            raise _not_found(endpoint_name(endpoint_id))
        return found

    async def list(self, scope: TenantScope, size: int, token: str) -> Page[Endpoint]:
        limit = page_size(size)
        after = decode_token(_ENDPOINTS_LIST, token)
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            found = await repository.list_endpoints(conn, after, limit + 1)
        positions = [PagePosition(e.created_at, e.id) for e in found]
        return Page(found[:limit], next_page_token(_ENDPOINTS_LIST, positions, limit))

    async def update(
        self, scope: TenantScope, endpoint_id: uuid.UUID, changes: EndpointChanges
    ) -> Endpoint:
        changed = [f.name for f in fields(changes) if getattr(changes, f.name) is not None]
        action = Action.WEBHOOK_ENDPOINT_UPDATE
        async with self._audited(scope, action, endpoint_id) as conn:
            _refuse(_description_violations(changes.description))
            found = await repository.update_endpoint(conn, endpoint_id, changes)
            if found is None:
                raise _not_found(endpoint_name(endpoint_id))
            await audit.record(
                conn, scope, action, endpoint_name(endpoint_id), details={"fields": changed}
            )
        return found

    async def delete(self, scope: TenantScope, endpoint_id: uuid.UUID) -> None:
        action = Action.WEBHOOK_ENDPOINT_DELETE
        async with self._audited(scope, action, endpoint_id) as conn:
            if not await repository.delete_endpoint(conn, endpoint_id):
                raise _not_found(endpoint_name(endpoint_id))
            await audit.record(conn, scope, action, endpoint_name(endpoint_id))

    async def rotate_secret(self, scope: TenantScope, endpoint_id: uuid.UUID) -> Endpoint:
        action = Action.WEBHOOK_SECRET_ROTATE
        async with self._audited(scope, action, endpoint_id) as conn:
            secret = self._box.new(scope.tenant_id, endpoint_id)
            found = await repository.rotate_secret(conn, endpoint_id, secret, ROTATION_OVERLAP)
            if found is None:
                raise _not_found(endpoint_name(endpoint_id))
            await audit.record(
                conn,
                scope,
                action,
                endpoint_name(endpoint_id),
                details={"overlap_seconds": int(ROTATION_OVERLAP.total_seconds())},
            )
        return found

    @asynccontextmanager
    async def _audited(
        self, scope: TenantScope, action: Action, endpoint_id: uuid.UUID
    ) -> AsyncIterator[asyncpg.Connection]:
        """A tenant transaction for a change of one endpoint, its refusal recorded.

        A NOT_FOUND raised inside rolls the (empty) transaction back: nothing had changed.
        """
        async with (
            audit.failures_recorded(self._pool, scope, action, endpoint_name(endpoint_id)),
            tenant_transaction(self._pool, scope) as conn,
        ):
            yield conn

    async def list_deliveries(
        self,
        scope: TenantScope,
        endpoint_id: uuid.UUID,
        state: DeliveryState | None,
        size: int,
        token: str,
    ) -> Page[Delivery]:
        limit = page_size(size)
        list_name = f"{endpoint_name(endpoint_id)}/deliveries"
        filter_text = "" if state is None else str(state)
        after = decode_token(list_name, token, filter_text)
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            if await repository.get_endpoint(conn, endpoint_id) is None:
                raise _not_found(endpoint_name(endpoint_id))
            found = await repository.list_deliveries(conn, endpoint_id, state, after, limit + 1)
        positions = [PagePosition(d.created_at, d.id) for d in found]
        return Page(found[:limit], next_page_token(list_name, positions, limit, filter_text))

    async def redeliver(
        self, scope: TenantScope, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> Delivery:
        action = Action.WEBHOOK_EVENT_REDELIVER
        async with self._audited(scope, action, endpoint_id) as conn:
            endpoint = await repository.get_endpoint(conn, endpoint_id)
            if endpoint is None:
                raise _not_found(endpoint_name(endpoint_id))
            if endpoint.disabled:
                raise FailedPrecondition(
                    f"{endpoint_name(endpoint_id)} is disabled; enable it first",
                    reason="WEBHOOK_ENDPOINT_DISABLED",
                )
            added = await repository.redeliver(conn, endpoint_id, delivery_id)
            if added is None:
                raise NotFound(
                    f"{delivery_name(endpoint_id, delivery_id)} not found",
                    reason="WEBHOOK_DELIVERY_NOT_FOUND",
                )
            await audit.record(
                conn,
                scope,
                action,
                endpoint_name(endpoint_id),
                details={"redelivery_of": str(delivery_id), "delivery": str(added.id)},
            )
        return added
