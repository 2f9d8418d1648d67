"""How long each kind of data is kept, and how the janitor works through it.

Personal data (a record's contact data and attribute values) is kept for
``CREDBATCH_RETENTION_DAYS`` after its batch ends, unless the tenant sets its own period.
Everything else the janitor prunes is bookkeeping with no personal data, kept as long as it
serves a purpose (a retry, a replay check, an operator's look at a failed delivery); each
period is a ``CREDBATCH_*_RETENTION`` variable in seconds, or ``..._DAYS`` in days where the
name says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

from credbatch.env_values import ConfigError, env_float, env_int, env_positive

if TYPE_CHECKING:
    from credbatch.config import Settings


class RetentionSettings(TypedDict):
    retention_days: int
    webhook_retention_days: int
    nonce_retention: float
    offer_retention: float
    access_token_retention: float
    idempotency_retention: float
    dispatch_retention: float
    send_stamp_retention: float
    janitor_interval: float
    janitor_step_rows: int
    janitor_step_pause: float
    janitor_share: float


def retention_settings(env: Mapping[str, str], defaults: Settings) -> RetentionSettings:
    """The retention fields of ``Settings``, from ``env`` or ``defaults``."""
    pause = env_float(env, "CREDBATCH_JANITOR_STEP_PAUSE", defaults.janitor_step_pause)
    if pause < 0:
        raise ConfigError(f"CREDBATCH_JANITOR_STEP_PAUSE must be 0 or more, got {pause}")
    share = env_float(env, "CREDBATCH_JANITOR_SHARE", defaults.janitor_share)
    if not 0 < share <= 1:
        raise ConfigError(f"CREDBATCH_JANITOR_SHARE must be above 0 and at most 1, got {share}")
    return {
        "retention_days": env_int(env, "CREDBATCH_RETENTION_DAYS", defaults.retention_days, 1),
        "webhook_retention_days": env_int(
            env, "CREDBATCH_WEBHOOK_RETENTION_DAYS", defaults.webhook_retention_days, 1
        ),
        "nonce_retention": env_positive(env, "CREDBATCH_NONCE_RETENTION", defaults.nonce_retention),
        "offer_retention": env_positive(env, "CREDBATCH_OFFER_RETENTION", defaults.offer_retention),
        "access_token_retention": env_positive(
            env, "CREDBATCH_ACCESS_TOKEN_RETENTION", defaults.access_token_retention
        ),
        "idempotency_retention": env_positive(
            env, "CREDBATCH_IDEMPOTENCY_RETENTION", defaults.idempotency_retention
        ),
        "dispatch_retention": env_positive(
            env, "CREDBATCH_DISPATCH_RETENTION", defaults.dispatch_retention
        ),
        "send_stamp_retention": env_positive(
            env, "CREDBATCH_SEND_STAMP_RETENTION", defaults.send_stamp_retention
        ),
        "janitor_interval": env_positive(
            env, "CREDBATCH_JANITOR_INTERVAL", defaults.janitor_interval
        ),
        "janitor_step_rows": env_int(
            env, "CREDBATCH_JANITOR_STEP_ROWS", defaults.janitor_step_rows, 1
        ),
        "janitor_step_pause": pause,
        "janitor_share": share,
    }
