"""Trace context in AMQP headers, alone and across the real broker."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from credbatch.messaging.publisher import ConfirmingPublisher, OutgoingMessage
from credbatch.messaging.topology import WORK_ROUTING_KEY, Topology
from credbatch.messaging.trace_headers import extract, inject
from credbatch.telemetry import tracer

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_inject_writes_traceparent_of_current_span(spans: InMemorySpanExporter) -> None:
    with tracer("test").start_as_current_span("outer") as span:
        headers = inject({"x-attempt": 1})
    context = span.get_span_context()
    assert headers["x-attempt"] == 1
    assert headers["traceparent"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )


def test_inject_without_span_adds_nothing() -> None:
    assert inject() == {}


def test_extract_accepts_str_and_bytes_values() -> None:
    for headers in (
        {"traceparent": TRACEPARENT},
        {"traceparent": TRACEPARENT.encode()},
        {"Traceparent": bytearray(TRACEPARENT.encode()), "x-attempt": 2},
    ):
        context = trace.get_current_span(extract(headers)).get_span_context()
        assert context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
        assert context.span_id == 0xB7AD6B7169203331
        assert context.is_remote


def test_extract_tolerates_missing_or_bad_headers() -> None:
    for headers in (None, {}, {"traceparent": b"\xff\xfe"}, {"traceparent": 42}):
        assert not trace.get_current_span(extract(headers)).get_span_context().is_valid


async def test_context_crosses_the_broker(
    spans: InMemorySpanExporter, amqp_channel: AbstractRobustChannel, topology: Topology
) -> None:
    publisher = ConfirmingPublisher(amqp_channel)
    with tracer("test.relay").start_as_current_span("publish job", kind=SpanKind.PRODUCER):
        message = OutgoingMessage(
            routing_key=WORK_ROUTING_KEY, body=b"job", message_id="traced-1", headers=inject()
        )
        await publisher.publish_many([message], timeout=5)

    received: asyncio.Future[AbstractIncomingMessage] = asyncio.get_running_loop().create_future()

    async def on_message(incoming: AbstractIncomingMessage) -> None:
        if not received.done():
            received.set_result(incoming)

    consumer_tag = await topology.work_queue.consume(on_message)
    try:
        incoming = await asyncio.wait_for(received, 10)
    finally:
        await topology.work_queue.cancel(consumer_tag)
    with tracer("test.worker").start_as_current_span(
        "consume job", context=extract(incoming.headers), kind=SpanKind.CONSUMER
    ):
        await incoming.ack()

    finished = {span.name: span for span in spans.get_finished_spans()}
    producer, consumer = finished["publish job"], finished["consume job"]
    assert consumer.parent is not None
    assert producer.context is not None and consumer.context is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent.is_remote
