"""The webhook dispatcher's settings, read and checked together (a lease must outlast a request)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

from credbatch.env_values import (
    ConfigError,
    env_float_list,
    env_int,
    env_positive,
)

if TYPE_CHECKING:
    from credbatch.config import Settings


class WebhookSettings(TypedDict):
    webhooks_port: int
    webhook_retry_schedule: tuple[float, ...]
    webhook_timeout: float
    webhook_lease_seconds: float
    webhook_endpoint_concurrency: int
    webhook_dispatch_concurrency: int
    webhook_poll_interval: float
    webhook_disable_after: float


def webhook_settings(env: Mapping[str, str], defaults: Settings) -> WebhookSettings:
    """The webhook fields of ``Settings``, from ``env`` or ``defaults``."""
    timeout = env_positive(env, "CREDBATCH_WEBHOOK_TIMEOUT", defaults.webhook_timeout)
    lease = env_positive(env, "CREDBATCH_WEBHOOK_LEASE_SECONDS", defaults.webhook_lease_seconds)
    if lease <= timeout:
        # A lease running out mid-request would let a second dispatcher send it meanwhile.
        raise ConfigError(
            f"CREDBATCH_WEBHOOK_LEASE_SECONDS ({lease}) must exceed "
            f"CREDBATCH_WEBHOOK_TIMEOUT ({timeout})"
        )
    return {
        "webhooks_port": env_int(env, "CREDBATCH_WEBHOOKS_PORT", defaults.webhooks_port),
        "webhook_retry_schedule": env_float_list(
            env, "CREDBATCH_WEBHOOK_RETRY_SCHEDULE", defaults.webhook_retry_schedule
        ),
        "webhook_timeout": timeout,
        "webhook_lease_seconds": lease,
        "webhook_endpoint_concurrency": env_int(
            env, "CREDBATCH_WEBHOOK_ENDPOINT_CONCURRENCY", defaults.webhook_endpoint_concurrency, 1
        ),
        "webhook_dispatch_concurrency": env_int(
            env, "CREDBATCH_WEBHOOK_DISPATCH_CONCURRENCY", defaults.webhook_dispatch_concurrency, 1
        ),
        "webhook_poll_interval": env_positive(
            env, "CREDBATCH_WEBHOOK_POLL_INTERVAL", defaults.webhook_poll_interval
        ),
        "webhook_disable_after": env_positive(
            env, "CREDBATCH_WEBHOOK_DISABLE_AFTER", defaults.webhook_disable_after
        ),
    }
