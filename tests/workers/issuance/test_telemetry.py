"""Spans of a job: a consumer span under the publisher's context, children for each step."""

from __future__ import annotations

import asyncpg
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from credbatch.config import Settings
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

_tracer = trace.get_tracer(__name__)


async def test_each_job_has_a_consumer_span_with_step_children_and_no_personal_data(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks, spans: InMemorySpanExporter
) -> None:
    arranged = await arrange_batch(owner_pool, 3)
    with _tracer.start_as_current_span("upload") as upload:
        await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        await wait_for_batch(owner_pool, arranged.batch_id)
    finished = spans.get_finished_spans()
    consumers = [
        s
        for s in finished
        if s.kind is SpanKind.CONSUMER
        and s.attributes is not None
        and s.attributes.get("credbatch.batch_id") == str(arranged.batch_id)
    ]
    assert len(consumers) == 3
    upload_context = upload.get_span_context()
    for consumer in consumers:
        assert consumer.parent is not None
        assert consumer.parent.span_id == upload_context.span_id
        assert consumer.context.trace_id == upload_context.trace_id
        children = {
            s.name
            for s in finished
            if s.parent is not None and s.parent.span_id == consumer.context.span_id
        }
        assert {
            "db issue",
            "sign credential",
            "render certificate",
            "render email",
            "smtp send",
            "render sms",
            "sms send",
            "db outcome",
        } <= children
    # Short values (scores, booleans) would match inside UUIDs by chance.
    personal = [
        value
        for row in arranged.rows
        for value in (row["email"], row["phone"], *map(str, row["attributes"].values()))
        if len(value) >= 6
    ]
    for span in finished:
        for value in (span.attributes or {}).values():
            assert not any(p in str(value) for p in personal), span.name
