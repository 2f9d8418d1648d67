"""Spans of the issuance worker: one consumer span per job, children for each step.

A group of jobs shares its SQL transactions, but every job keeps a trace of its own: work
done once for the whole group gets one child span under each job's span. A job whose span is
not recorded gets no child spans at all. Only an error's
type is recorded, never its message (messages may quote holders' data).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from credbatch.messaging import trace_headers
from credbatch.messaging.topology import WORK_QUEUE

_tracer = trace.get_tracer(__name__)


def consumer_span(message: AbstractIncomingMessage, context: Context | None = None) -> Span:
    """Start a job's span, a child of the trace context its message carries (``context``, when
    already extracted for another job of the message); caller ends it."""
    return _tracer.start_span(
        f"{WORK_QUEUE} process",
        context=context if context is not None else trace_headers.extract(message.headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation": "process",
            "messaging.destination.name": WORK_QUEUE,
            "messaging.message.id": message.message_id or "",
        },
    )


@contextmanager
def group_spans(name: str, parents: Sequence[Span], **attributes: Any) -> Iterator[None]:
    """One span under each parent for work done once for the whole group (one transaction)."""
    spans = [
        _tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            attributes={**attributes, "credbatch.group_size": len(parents)},
        )
        for parent in parents
        if parent.is_recording()
    ]
    try:
        yield
    except BaseException as error:
        for span in spans:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        for span in spans:
            span.end()


@contextmanager
def step_span(name: str, parent: Span, **attributes: Any) -> Iterator[Span]:
    """A span for one job's step (render, sign, send), current while the step runs.

    Under a job whose span is not recorded (sampled out, or tracing off) the step yields that
    span: a child would not be recorded either (the sampler follows the parent), and making
    one per step of every record cost a worker a few percent of its CPU.
    """
    if not parent.is_recording():
        yield parent
        return
    with _tracer.start_as_current_span(
        name,
        context=trace.set_span_in_context(parent),
        attributes=attributes,
        record_exception=False,
    ) as span:
        yield span
