"""W3C trace context in AMQP message headers.

The global propagator (``opentelemetry.propagate``; W3C TraceContext and Baggage unless
``OTEL_PROPAGATORS`` says otherwise) writes ``traceparent``/``tracestate`` into the headers at
publish time, and the consumer extracts them to parent its span, so a record's issuance joins
the trace of the upload that created it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context


def inject(headers: dict[str, Any] | None = None, context: Context | None = None) -> dict[str, Any]:
    """Write the current (or given) trace context into ``headers`` and return them.

    A new dict is created when ``headers`` is None; otherwise it is updated in place.
    """
    carrier: dict[str, Any] = {} if headers is None else headers
    text: dict[str, str] = {}
    propagate.inject(text, context=context)
    carrier.update(text)
    return carrier


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


def extract(headers: Mapping[str, Any] | None) -> Context:
    """The trace context carried by AMQP ``headers`` (str or bytes values); empty if none."""
    carrier: dict[str, str] = {}
    for key, value in (headers or {}).items():
        text = _as_text(value)
        if text is not None:
            carrier[key.lower()] = text
    return propagate.extract(carrier)
