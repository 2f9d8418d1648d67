"""How many uploads a tenant may run at once in this process.

An upload costs a gRPC stream, a validator and a spool file for as long as its client sends;
without a cap, one tenant opening many uploads would take the process's CPU and disk from
every other tenant. A further upload is refused at once with RESOURCE_EXHAUSTED (the client
retries later) rather than queued, since a queued stream would hold its connection anyway.

The count is per process, not across the replicas of the service: a tenant can run up to
the cap on each replica. A cross-process count (a PostgreSQL advisory lock per slot) would
need a database session held for the whole upload, which is exactly the resource uploads no
longer hold while their clients stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from credbatch.errors import ResourceExhausted

TOO_MANY_UPLOADS = "TOO_MANY_UPLOADS"
RETRY_SECONDS = 5.0
"""The RetryInfo of a refused upload: a running upload of a typical file ends within seconds."""


class TenantUploadSlots:
    """A count of running uploads per tenant, with a fixed cap."""

    def __init__(self, per_tenant: int) -> None:
        if per_tenant < 1:
            raise ValueError("per_tenant must be at least 1")
        self._cap = per_tenant
        self._running: dict[uuid.UUID, int] = {}

    def running(self, tenant_id: uuid.UUID) -> int:
        return self._running.get(tenant_id, 0)

    @contextmanager
    def hold(self, tenant_id: uuid.UUID) -> Iterator[None]:
        """Take one of the tenant's slots for the block.

        Raises:
            ResourceExhausted: the tenant already runs ``per_tenant`` uploads here.
        """
        running = self._running.get(tenant_id, 0)
        if running >= self._cap:
            raise ResourceExhausted(
                f"this tenant already runs {self._cap} uploads at once; retry when one ends",
                reason=TOO_MANY_UPLOADS,
                metadata={"max_concurrent": str(self._cap)},
                retry_delay=RETRY_SECONDS,
            )
        self._running[tenant_id] = running + 1
        try:
            yield
        finally:
            left = self._running[tenant_id] - 1
            if left:
                self._running[tenant_id] = left
            else:
                del self._running[tenant_id]
