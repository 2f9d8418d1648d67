"""The drain time checked against the send timeouts at start-up, in every mode."""

from __future__ import annotations

import subprocess
import sys

import pytest

from credbatch.config import ConfigError, load_settings
from credbatch.config_checks import DRAIN_MARGIN_SECONDS, check_drain_time


def test_defaults_leave_a_send_at_its_timeout_room_to_finish() -> None:
    settings = load_settings({})
    assert settings.grace_seconds == 30.0
    assert (settings.smtp_timeout, settings.sms_timeout) == (10.0, 10.0)
    slowest = max(settings.smtp_timeout, settings.sms_timeout) + DRAIN_MARGIN_SECONDS
    assert settings.grace_seconds >= slowest


def test_timeouts_are_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "CREDBATCH_GRACE_SECONDS": "12",
            "CREDBATCH_SMTP_TIMEOUT": "11",
            "CREDBATCH_SMS_TIMEOUT": "4.5",
        }
    )
    assert (settings.grace_seconds, settings.smtp_timeout, settings.sms_timeout) == (
        12.0,
        11.0,
        4.5,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # The old default: a grace equal to the SMTP timeout.
        ({"CREDBATCH_GRACE_SECONDS": "10"}, "CREDBATCH_SMTP_TIMEOUT (10)"),
        (
            {"CREDBATCH_GRACE_SECONDS": "20", "CREDBATCH_SMTP_TIMEOUT": "19.5"},
            "CREDBATCH_SMTP_TIMEOUT (19.5)",
        ),
        (
            {
                "CREDBATCH_GRACE_SECONDS": "20",
                "CREDBATCH_SMTP_TIMEOUT": "5",
                "CREDBATCH_SMS_TIMEOUT": "25",
            },
            "CREDBATCH_SMS_TIMEOUT (25)",
        ),
    ],
)
def test_a_grace_a_slow_send_would_outlast_is_refused_naming_both(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert f"CREDBATCH_GRACE_SECONDS ({env['CREDBATCH_GRACE_SECONDS']})" in message
    assert named in message


def test_the_margin_is_the_boundary() -> None:
    check_drain_time(10 + DRAIN_MARGIN_SECONDS, smtp_timeout=10, sms_timeout=10)
    with pytest.raises(ConfigError, match="raise CREDBATCH_GRACE_SECONDS to 11"):
        check_drain_time(10 + DRAIN_MARGIN_SECONDS - 0.01, smtp_timeout=10, sms_timeout=1)


@pytest.mark.parametrize("name", ["CREDBATCH_SMTP_TIMEOUT", "CREDBATCH_SMS_TIMEOUT"])
@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_timeouts_must_be_positive_numbers(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_a_process_refuses_to_start_with_a_short_grace() -> None:
    """What an operator sees: exit status 2 and the message on stderr, before any connection."""
    env = {"CREDBATCH_GRACE_SECONDS": "10", "OTEL_SDK_DISABLED": "true", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "workers.issuance"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "CREDBATCH_GRACE_SECONDS (10) must be at least CREDBATCH_SMTP_TIMEOUT" in done.stderr
