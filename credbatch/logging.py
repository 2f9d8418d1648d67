"""Single-line JSON logs to stderr, correlated with the active trace.

Each line holds ``ts``, ``level``, ``service``, ``logger``, ``message``, ``trace_id`` and
``span_id`` (when a span is current where the line is logged) and any ``extra=`` fields. The
level comes from ``CREDBATCH_LOG_LEVEL`` (default INFO).

The trace ids are stamped on the record when it is logged (``TraceContextFilter``), not when it
is formatted, so any handler sees them. Code that logs for work it holds a span of but that is
not current (a worker's line about one batch of a group) makes that span current around the
call: ``with trace.use_span(span, end_on_exit=False): log.info(...)``.

No personal data is ever logged by our code: no emails, phone numbers, attribute values, CSV
cells, tokens or request bodies, in messages or in ``extra`` fields. Log identifiers instead
(tenant, batch and record ids, row numbers, error codes).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from opentelemetry import trace

from credbatch.config import ConfigError

__all__ = ["JsonFormatter", "TraceContextFilter", "configure_logging"]

_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

# Attributes every LogRecord has; anything else was passed with extra=.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def redacted_traceback(error: BaseException) -> str:
    """The traceback of `error` and of what caused it, with every exception message withheld.

    Exception messages may quote data (a driver echoing a key value, a provider echoing an
    address), so only types and frames are logged.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        kind = type(current)
        parts.append(f"{frames}{kind.__module__}.{kind.__qualname__} (message withheld)")
        current = current.__cause__ or current.__context__
    return "\n-- which was raised while handling --\n".join(reversed(parts))


class TraceContextFilter(logging.Filter):
    """Stamps ``trace_id`` and ``span_id`` of the current span on each record it passes.

    A record given its own ids (``extra={"trace_id": ...}``) keeps them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.trace_id = format(span_context.trace_id, "032x")
                record.span_id = format(span_context.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Stamped by TraceContextFilter when the record was logged; else (a handler without
        # the filter) the span current now, which is the same for a synchronous handler.
        if not hasattr(record, "trace_id"):
            TraceContextFilter().filter(record)
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["exc_info"] = redacted_traceback(record.exc_info[1])
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(
    service_name: str,
    *,
    env: Mapping[str, str] | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send the root logger's records, as JSON lines, to stderr (or ``stream``).

    Calling it again replaces the handler installed by the previous call.

    Raises:
        ConfigError: ``CREDBATCH_LOG_LEVEL`` is not a level name.
    """
    env = os.environ if env is None else env
    level = (env.get("CREDBATCH_LOG_LEVEL") or "INFO").strip().upper()
    if level not in _LEVELS:
        raise ConfigError(f"CREDBATCH_LOG_LEVEL must be one of {', '.join(_LEVELS)}, got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    handler.addFilter(TraceContextFilter())
    handler.set_name("credbatch")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "credbatch":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
