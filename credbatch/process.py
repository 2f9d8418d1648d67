"""Start one credbatch component: settings, logging, tracing, metrics, the event loop."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

from credbatch.config import ConfigError, Settings, load_settings
from credbatch.logging import configure_logging
from credbatch.metrics import configure_metrics, shutdown_metrics
from credbatch.telemetry import configure_tracing, shutdown_tracing


def run_component(component: str, main: Callable[[Settings], Coroutine[Any, Any, None]]) -> None:
    """Run `main(settings)` on uvloop until it returns; exit 2 on a configuration error."""
    configure_logging(component)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"credbatch {component}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_tracing(component)
    try:
        configure_metrics(component, host=settings.host, port=settings.metrics_port)
    except OSError as error:
        print(f"credbatch {component}: cannot serve metrics: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    # What start-up allocated (modules, settings, clients) lives as long as the process: kept
    # out of the collector's reach, a full collection walks only what the work allocates.
    gc.freeze()
    try:
        uvloop.run(main(settings))
    except ConfigError as error:
        print(f"credbatch {component}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        shutdown_metrics()
        shutdown_tracing()
