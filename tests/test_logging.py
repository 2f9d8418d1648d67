"""Trace ids stamped on log records when they are logged, whichever handler formats them."""

from __future__ import annotations

import json
import logging
from logging.handlers import BufferingHandler

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from credbatch.logging import JsonFormatter, TraceContextFilter
from credbatch.telemetry import tracer
from tests.fixtures.logs import json_logs


def test_a_record_formatted_after_its_span_ended_keeps_the_span_ids(
    spans: InMemorySpanExporter,
) -> None:
    buffered = BufferingHandler(capacity=10)
    buffered.addFilter(TraceContextFilter())
    log = logging.getLogger("credbatch.test.buffered")
    log.addHandler(buffered)
    log.setLevel(logging.INFO)
    try:
        with tracer("test").start_as_current_span("work") as span:
            log.info("inside")
        log.info("outside")
    finally:
        log.removeHandler(buffered)
    inside, outside = (json.loads(JsonFormatter("svc").format(r)) for r in buffered.buffer)
    context = span.get_span_context()
    assert (inside["trace_id"], inside["span_id"]) == (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    )
    assert "trace_id" not in outside


def test_ids_given_by_the_caller_win(spans: InMemorySpanExporter) -> None:
    given = {"trace_id": "0" * 31 + "1", "span_id": "0" * 15 + "2"}
    with json_logs() as logs, tracer("test").start_as_current_span("other"):
        logging.getLogger("credbatch.test").warning("given", extra=given)
    (entry,) = logs.containing("given")
    assert (entry["trace_id"], entry["span_id"]) == (given["trace_id"], given["span_id"])
