"""credbatch.metrics: what is installed when, and the instruments' definitions."""

from __future__ import annotations

import os
import socket

from opentelemetry import metrics

from credbatch.metrics import INSTRUMENTS, configure_metrics, metrics_enabled
from tests.fixtures.processes import free_port
from tests.fixtures.scrape import listening_ports


def test_nothing_is_installed_without_a_port_or_an_endpoint() -> None:
    assert configure_metrics("test", host="127.0.0.1", port=0, env={}) is None
    assert not metrics_enabled()


def test_a_disabled_sdk_serves_nothing_even_with_a_port() -> None:
    port = free_port()
    env = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    assert configure_metrics("test", host="127.0.0.1", port=port, env=env) is None
    assert not metrics_enabled()
    assert port not in listening_ports(os.getpid())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # still free
    # The global provider is still the API's default (no SDK provider was set).
    assert type(metrics.get_meter_provider()).__module__.startswith("opentelemetry.metrics")


def test_instrument_names_are_unique_and_units_follow_the_conventions() -> None:
    names = [spec.name for spec in INSTRUMENTS]
    assert len(names) == len(set(names))
    for spec in INSTRUMENTS:
        assert spec.name.startswith(("credbatch.", "rpc.server.", "http.server.")), spec.name
        assert spec.description.endswith("."), spec.name
        if spec.kind == "histogram":
            assert spec.unit == "s", spec.name
