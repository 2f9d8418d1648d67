"""The retention settings: documented defaults, environment overrides, refusals naming the
variable."""

from __future__ import annotations

import pytest

from credbatch.config import ConfigError, load_settings


def test_the_defaults_are_the_documented_ones() -> None:
    settings = load_settings({})
    assert (settings.retention_days, settings.webhook_retention_days) == (30, 30)
    assert (settings.nonce_retention, settings.offer_retention) == (3600.0, 604800.0)
    assert (settings.access_token_retention, settings.idempotency_retention) == (86400.0, 604800.0)
    assert (settings.dispatch_retention, settings.send_stamp_retention) == (86400.0, 604800.0)
    assert (settings.janitor_interval, settings.janitor_step_rows) == (60.0, 1000)
    assert (settings.janitor_step_pause, settings.janitor_share) == (0.1, 0.02)
    assert settings.janitor_database_url.startswith("postgresql://credbatch_janitor@")


def test_the_environment_wins() -> None:
    settings = load_settings(
        {
            "CREDBATCH_RETENTION_DAYS": "7",
            "CREDBATCH_OFFER_RETENTION": "60",
            "CREDBATCH_JANITOR_STEP_PAUSE": "0",
            "CREDBATCH_JANITOR_SHARE": "1",
        }
    )
    assert (settings.retention_days, settings.offer_retention) == (7, 60.0)
    assert (settings.janitor_step_pause, settings.janitor_share) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CREDBATCH_RETENTION_DAYS", "0"),
        ("CREDBATCH_WEBHOOK_RETENTION_DAYS", "x"),
        ("CREDBATCH_NONCE_RETENTION", "-1"),
        ("CREDBATCH_JANITOR_STEP_ROWS", "0"),
        ("CREDBATCH_JANITOR_STEP_PAUSE", "-0.5"),
        ("CREDBATCH_JANITOR_SHARE", "0"),
        ("CREDBATCH_JANITOR_SHARE", "1.5"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings({key: value})
