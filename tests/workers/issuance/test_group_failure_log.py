"""A group that fails mid-way (database or broker trouble) is logged with its tenant and
batches and the error's type, never its message; its jobs are retried."""

from __future__ import annotations

import uuid
from typing import Any, cast

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from credbatch.config import Settings
from credbatch.telemetry import tracer
from tests.fixtures.logs import json_logs
from workers.issuance.handler import IssuanceHandler
from workers.issuance.job import Job, Target
from workers.issuance.outcomes import Outcome


async def test_a_failed_group_names_tenant_batches_and_error_type_only(
    spans: InMemorySpanExporter,
) -> None:
    tenant, batches = uuid.uuid4(), sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    handler = IssuanceHandler.__new__(IssuanceHandler)
    handler._settings = Settings(max_attempts=3)

    async def lost_connection(tenant_id: uuid.UUID, jobs: list[Job]) -> None:
        raise ConnectionResetError("holder@example.com")  # a message that quotes data

    handler._process = lost_connection  # type: ignore[method-assign]
    jobs = [
        Job(
            message=cast(Any, None),  # never touched before settling
            span=tracer("test").start_span("job"),
            target=Target(tenant, batch, uuid.uuid4()),
            attempt=1,
        )
        for batch in (*batches, batches[0])
    ]
    with json_logs("issuance") as logs:
        await handler._tenant_group(tenant, jobs)
    (entry,) = logs.containing("issuance group of 3 jobs failed")
    assert entry["level"] == "WARNING"
    assert entry["tenant_id"] == str(tenant)
    assert entry["batch_ids"] == [str(b) for b in batches]
    assert "(ConnectionResetError)" in entry["message"]
    assert "holder@example.com" not in logs.text
    assert {(j.decision.outcome, j.decision.next_attempt) for j in jobs if j.decision} == {
        (Outcome.RETRY, 2)
    }
