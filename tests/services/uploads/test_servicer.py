"""A valid file through the real service: one batch QUEUED, its records PENDING, normalised."""

from __future__ import annotations

import asyncpg
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from credbatch.gen.batches.v1 import batch_pb2
from tests.fixtures.uploads import Tenant, batch_count, batch_rows, csv_file, row


async def test_valid_file_creates_a_queued_batch_with_pending_normalised_records(
    tenant: Tenant, owner_pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    content = csv_file(
        [
            row(1, email=" Holder1@EXAMPLE.com ", phone="(415) 555-0001", member="Y"),
            row(2, age="", born="", score="", member="", level="", site=""),
            row(3, level="silver", score="-0.25"),
        ]
    )
    response = await tenant.upload(content, chunk=7)
    assert response.report.valid and response.report.rows_total == 3
    assert response.report.error_count == 0
    batch = response.batch
    assert batch.name.startswith("batches/")
    assert batch.state == batch_pb2.BATCH_STATE_QUEUED
    assert batch.total_records == 3 and batch.record_counts.pending == 3
    assert batch.department == "sales" and batch.filename == "holders.csv"

    records = await batch_rows(owner_pool, tenant.tenant_id)
    assert [r["row_number"] for r in records] == [1, 2, 3]
    assert {r["state"] for r in records} == {"PENDING"}
    first, second, third = records
    assert first["email"] == "Holder1@example.com"
    assert first["phone"] == "+14155550001"
    assert first["attributes"] == {
        "name": "Holder 1",
        "age": 21,
        "born": "1990-05-17",
        "score": 7.5,
        "member": True,
        "level": "Gold",
        "site": "https://example.com/p",
    }
    assert second["attributes"] == {"name": "Holder 2"}
    assert third["attributes"]["level"] == "Silver"

    (upload,) = [s for s in spans.get_finished_spans() if s.name == "credbatch.upload"]
    assert upload.attributes is not None
    assert upload.attributes["credbatch.upload.rows_total"] == 3
    assert upload.attributes["credbatch.upload.error_count"] == 0
    stored = await owner_pool.fetchval(
        "SELECT traceparent FROM batches WHERE tenant_id = $1", tenant.tenant_id
    )
    assert stored.split("-")[1] == format(upload.context.trace_id, "032x")
    assert stored.split("-")[2] == format(upload.context.span_id, "016x")
    # No row content in the span.
    assert "holder1" not in repr(dict(upload.attributes)).lower()
    assert await batch_count(owner_pool, tenant.tenant_id) == 1
