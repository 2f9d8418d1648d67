"""OpenTelemetry metrics: the provider, the Prometheus ``/metrics`` endpoint, every instrument.

``configure_metrics`` installs one global ``MeterProvider`` per process with up to two readers:

* Prometheus text on ``http://CREDBATCH_HOST:CREDBATCH_METRICS_PORT/metrics`` (0, the default,
  serves nothing), pulled by Prometheus (``deploy/k8s/base/monitoring.yaml``);
* OTLP/gRPC, pushed every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (60 s), only when
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` is set, like the
  traces (``credbatch.telemetry``); ``OTEL_METRICS_EXPORTER=none`` turns it off.

``OTEL_SDK_DISABLED=true`` turns off both (and the traces).

Without a reader nothing is installed and every instrument below stays the API's no-op.

The instruments are defined here, once, at import: modules record through them, and the
definitions are what the dashboards and alerts are checked against (``INSTRUMENTS``). Their
attributes are low-cardinality enumerations only: a method, a status code, an outcome, a
state, a channel, an error code. Never a tenant, batch or record id, never an address or
anything read from a file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation, UpDownCounter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

__all__ = [
    "INSTRUMENTS",
    "InstrumentSpec",
    "Sampled",
    "configure_metrics",
    "metrics_enabled",
    "shutdown_metrics",
]

log = logging.getLogger(__name__)

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

# Seconds: from a fast RPC or SMTP hand-off (a few ms) to a slow upload or provider (a minute).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds from an upload until its records are invited: a large batch takes minutes, a batch
# held back by its tenant's sending rate or retried hours. 3600 is the SLO's threshold
# (deploy/observability/rules.yaml).
LEAD_TIME_BUCKETS = (
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    86400.0,
)

Kind = Literal["counter", "histogram", "up_down_counter", "gauge"]


@dataclass(frozen=True)
class InstrumentSpec:
    """One instrument as defined below: what tests and ``deploy/`` checks read."""

    name: str
    kind: Kind
    unit: str
    description: str
    buckets: tuple[float, ...] = ()  # a histogram's bucket boundaries


INSTRUMENTS: list[InstrumentSpec] = []
"""Every instrument this module defines, in definition order."""

_meter = metrics.get_meter("credbatch")


def _counter(name: str, unit: str, description: str) -> Counter:
    INSTRUMENTS.append(InstrumentSpec(name, "counter", unit, description))
    return _meter.create_counter(name, unit=unit, description=description)


def _histogram(
    name: str, description: str, buckets: tuple[float, ...] = DURATION_BUCKETS
) -> Histogram:
    INSTRUMENTS.append(InstrumentSpec(name, "histogram", "s", description, buckets))
    return _meter.create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=buckets,
    )


def _up_down_counter(name: str, unit: str, description: str) -> UpDownCounter:
    INSTRUMENTS.append(InstrumentSpec(name, "up_down_counter", unit, description))
    return _meter.create_up_down_counter(name, unit=unit, description=description)


class Sampled:
    """A gauge whose value is read elsewhere (a database query, a queue declaration).

    The reader sets it; each collection reports the latest value, or nothing before the first
    read or after ``clear()``. Collections run on the scrape thread, so reading the source in
    the callback itself (async I/O) is not possible, and would let every scrape load it.
    """

    def __init__(self, name: str, unit: str, description: str) -> None:
        INSTRUMENTS.append(InstrumentSpec(name, "gauge", unit, description))
        self._value: float | None = None
        _meter.create_observable_gauge(name, [self._observe], unit=unit, description=description)

    def set(self, value: float) -> None:
        self._value = value

    @property
    def value(self) -> float | None:
        """The latest value read (None before the first read or after ``clear()``)."""
        return self._value

    def clear(self) -> None:
        self._value = None

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        value = self._value
        return () if value is None else (Observation(value),)


# --- gRPC servers (credbatch.server.rpc_metrics) -----------------------------------------------
# OpenTelemetry RPC semantic conventions: rpc.system, rpc.service, rpc.method and the numeric
# rpc.grpc.status_code.
RPC_SERVER_DURATION = _histogram(
    "rpc.server.call.duration", "Duration of RPCs handled, by method and gRPC status code."
)

# --- public HTTP endpoints (services.public) ---------------------------------------------------
# OpenTelemetry HTTP semantic conventions: http.request.method, http.route (the route template,
# never the path: paths hold tokens and ids), http.response.status_code.
HTTP_SERVER_DURATION = _histogram(
    "http.server.request.duration", "Duration of HTTP requests served, by route and status."
)

# --- uploads (services.uploads) -----------------------------------------------------------------
# Whatever became of the file (stored, validate_only, invalid, over a limit): what was read.
UPLOAD_ROWS = _counter("credbatch.upload.rows", "{row}", "CSV data rows read by uploads.")
UPLOAD_SIZE = _counter("credbatch.upload.size", "By", "CSV bytes read by uploads.")

# --- outbox relay (workers.relay) ---------------------------------------------------------------
OUTBOX_PENDING = Sampled(
    "credbatch.outbox.pending", "{record}", "Records waiting in the outbox (state PENDING)."
)
OUTBOX_OLDEST_AGE = Sampled(
    "credbatch.outbox.oldest_age", "s", "Age of the oldest record waiting in the outbox."
)
DEAD_LETTER_DEPTH = Sampled(
    "credbatch.dead_letter.depth", "{message}", "Jobs in the dead-letter queue."
)
# credbatch.dead_letter.outcome: failed (its record became FAILED), stale (its record had
# finished or was to be published again), malformed (the body names no record). The relay takes
# each dead letter off the queue within a second, so the depth above stays near 0: this count is
# what shows that jobs are being dead-lettered.
DEAD_LETTERS = _counter(
    "credbatch.dead_letters", "{job}", "Dead-lettered jobs the relay consumed, by outcome."
)
RELAY_PUBLISHED = _counter(
    "credbatch.relay.published", "{job}", "Jobs published and confirmed by the broker."
)
RELAY_CONFIRM_DURATION = _histogram(
    "credbatch.relay.confirm.duration",
    "From publishing a window of jobs until the broker confirmed them all.",
)

# --- issuance workers (workers.issuance) --------------------------------------------------------
# credbatch.job.outcome: ack, retry, dead_letter, skipped (a job with nothing left to do).
JOBS = _counter("credbatch.jobs", "{job}", "Jobs settled, by outcome.")
# credbatch.record.state: the state a record entered (ISSUED, INVITED, FAILED, ...).
RECORD_TRANSITIONS = _counter(
    "credbatch.record.transitions", "{record}", "Records that entered a state, by state."
)
# credbatch.invitation.channel: email or sms; error.type: the failure code (SMTP_REJECTED, ...).
INVITATION_DURATION = _histogram(
    "credbatch.invitation.duration",
    "Time to hand one invitation to SMTP or the SMS provider, sent or failed.",
)
INVITATION_FAILURES = _counter(
    "credbatch.invitation.failures", "{invitation}", "Invitations not sent, by channel and code."
)

# credbatch.reminder.channel: email or sms. A reminder step's message accepted by the server.
REMINDERS_SENT = _counter(
    "credbatch.reminders.sent", "{reminder}", "Reminders sent to holders who had not claimed."
)

# --- bounces and receipts (services.bounces: email; services.public: SMS) ----------------------
# credbatch.bounce.channel: email or sms; credbatch.bounce.kind: delivered, deferred, bounced,
# failed (the report's news), ignored (no report, or an SMS status that is not final),
# refused (RCPT refused, or an SMS callback's signature), retry (answered 451);
# credbatch.bounce.outcome: recorded, unchanged, gone (its record was purged: nothing
# recorded), stale (a report of an earlier send of a record sent again), unknown (no such
# record), or why it was refused or ignored.
BOUNCE_NOTIFICATIONS = _counter(
    "credbatch.bounce.notifications",
    "{notification}",
    "Bounces, delivery reports and SMS status callbacks, by channel, kind and outcome.",
)
BOUNCE_DURATION = _histogram(
    "credbatch.bounce.duration", "Time to parse and record one bounce or receipt (DATA)."
)
# Records of batches uploaded that became INVITED: the upload-to-invited SLO's histogram.
UPLOAD_TO_INVITED = _histogram(
    "credbatch.record.upload_to_invited",
    "From the upload of a record's batch until the record became INVITED.",
    LEAD_TIME_BUCKETS,
)
JOBS_IN_FLIGHT = _up_down_counter(
    "credbatch.worker.jobs_in_flight", "{job}", "Jobs a worker is processing now."
)
# What saturates a worker. Jobs are handled in groups, each holding a slot until its slowest
# send is done: with every slot busy the worker takes nothing new, however few jobs the groups
# hold (a slow SMTP relay keeps all slots busy with small groups). Messages received meanwhile
# wait in the buffer; SMTP sends wait for one of the pool's connections.
WORKER_SLOTS_BUSY = _up_down_counter(
    "credbatch.worker.slots.busy", "{slot}", "Job group slots of a worker in use now."
)
WORKER_SLOTS = Sampled(
    "credbatch.worker.slots.limit", "{slot}", "Job group slots of a worker (groups at once)."
)
WORKER_BUFFERED = _up_down_counter(
    "credbatch.worker.buffered", "{message}", "Jobs received and waiting for a free slot."
)
SMTP_CONNECTIONS_BUSY = _up_down_counter(
    "credbatch.smtp.connections.busy", "{connection}", "SMTP connections sending now."
)
SMTP_CONNECTIONS = Sampled(
    "credbatch.smtp.connections.limit", "{connection}", "SMTP connections a worker opens at most."
)

# --- the signer (services.signer) --------------------------------------------------------------
# The funnel's last step (invited, delivered, claimed): the signer alone makes a record CLAIMED,
# in the transaction that spends the wallet's grant; counted once that committed.
CLAIMS = _counter(
    "credbatch.claims", "{credential}", "Credentials holders claimed (their records CLAIMED)."
)

# --- webhook dispatchers (workers.webhooks) -----------------------------------------------------
# credbatch.webhook.outcome: succeeded, retry, failed, gone (the endpoint answered 410).
WEBHOOK_DELIVERIES = _counter(
    "credbatch.webhook.deliveries", "{attempt}", "Webhook delivery attempts, by outcome."
)
WEBHOOK_DELIVERY_DURATION = _histogram(
    "credbatch.webhook.delivery.duration",
    "Time of one webhook request, from connecting until the answer or the failure.",
)
WEBHOOK_OLDEST_UNDELIVERED_AGE = Sampled(
    "credbatch.webhook.oldest_undelivered_age",
    "s",
    "Age of the oldest webhook delivery still to make (0 when none is).",
)

# --- janitor (workers.janitor) ------------------------------------------------------------------
# credbatch.janitor.reason: retention (the purge).
JANITOR_PURGED = _counter(
    "credbatch.janitor.purged",
    "{record}",
    "Records whose personal data the retention purge erased.",
)
# credbatch.janitor.kind: webhook_deliveries, webhook_events, spent_nonces, offers,
# access_tokens, idempotency_keys, dispatch, audit_events.
JANITOR_PRUNED = _counter(
    "credbatch.janitor.pruned", "{row}", "Rows the janitor's pruning deleted, by kind."
)
JANITOR_PASS_DURATION = _histogram(
    "credbatch.janitor.pass.duration",
    "Time of one janitor pass: the retention purge and every kind of pruning.",
)

# --- provider set-up -----------------------------------------------------------------------------

_lock = threading.Lock()
_provider: MeterProvider | None = None
_http_server: WSGIServer | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _otlp_wanted(env: Mapping[str, str]) -> bool:
    choice = (env.get("OTEL_METRICS_EXPORTER") or "otlp").strip().lower()
    return choice != "none" and any(env.get(key) for key in _ENDPOINT_VARIABLES)


def configure_metrics(
    service_name: str, *, host: str, port: int, env: Mapping[str, str] | None = None
) -> MeterProvider | None:
    """Install the global meter provider and start ``/metrics``; once per process.

    Args:
        service_name: the default ``service.name``; ``OTEL_SERVICE_NAME`` wins over it.
        host: listen address of ``/metrics``.
        port: its port; 0 serves nothing.
        env: the variables to read (default ``os.environ``).

    Returns:
        The provider, or None when no reader is wanted (the instruments stay no-ops).

    Raises:
        OSError: the port cannot be bound.
    """
    global _provider, _http_server
    env = os.environ if env is None else env
    with _lock:
        if _provider is not None:
            return _provider
        if _truthy(env.get("OTEL_SDK_DISABLED")):
            # The SDK's meters would all be no-ops: serving /metrics would only mislead.
            if port:
                log.info("OTEL_SDK_DISABLED=true: no metrics on port %d", port)
            return None
        readers: list[MetricReader] = []
        if port:
            # Imported here: the exporters' start-up cost only where they are used.
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import start_http_server

            readers.append(PrometheusMetricReader())
            _http_server, _ = start_http_server(port, addr=host)
            log.info("metrics on http://%s:%d/metrics", host, port)
        if _otlp_wanted(env):
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        if not readers:
            return None
        name = env.get("OTEL_SERVICE_NAME") or service_name
        provider = MeterProvider(
            resource=Resource.create({SERVICE_NAME: name}), metric_readers=readers
        )
        metrics.set_meter_provider(provider)
        _provider = provider
        return provider


def metrics_enabled() -> bool:
    """Whether ``configure_metrics`` installed a provider: worth reading sampled gauges."""
    with _lock:
        return _provider is not None


def shutdown_metrics() -> None:
    """Push the last OTLP export and stop ``/metrics``; call once, when the process stops."""
    global _http_server
    with _lock:
        provider, server = _provider, _http_server
        _http_server = None
    if provider is not None:
        provider.shutdown()
    if server is not None:
        server.shutdown()
        server.server_close()
