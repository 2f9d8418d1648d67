"""SMTP security settings: parsed, checked, and refused in production when unencrypted."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from credbatch.config import ConfigError, load_settings

PRODUCTION = {
    "CREDBATCH_MODE": "production",
    "CREDBATCH_JWT_SECRET": "s" * 40,
    # Production checks the KEK's strength: random bytes, as an operator would generate them.
    "CREDBATCH_KEK": base64.b64encode(os.urandom(32)).decode(),
}


def test_development_defaults_to_no_tls_and_production_to_starttls(tmp_path: Path) -> None:
    development = load_settings({"CREDBATCH_KEK_FILE": str(tmp_path / "kek")})
    assert (development.smtp_tls, development.smtp_username, development.smtp_ca_file) == (
        "none",
        None,
        None,
    )
    assert load_settings(PRODUCTION).smtp_tls == "starttls"


def test_tls_credentials_and_ca_file_are_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        {
            **PRODUCTION,
            "CREDBATCH_SMTP_TLS": "IMPLICIT",
            "CREDBATCH_SMTP_USERNAME": "relay",
            "CREDBATCH_SMTP_PASSWORD": "secret",
            "CREDBATCH_SMTP_CA_FILE": str(ca),
        }
    )
    assert (settings.smtp_tls, settings.smtp_username, settings.smtp_password) == (
        "implicit",
        "relay",
        "secret",
    )
    assert settings.smtp_ca_file == str(ca)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"CREDBATCH_SMTP_TLS": "none"}, "CREDBATCH_SMTP_TLS=none"),
        ({"CREDBATCH_SMTP_TLS": "ssl"}, "CREDBATCH_SMTP_TLS must be one of"),
        ({"CREDBATCH_SMTP_USERNAME": "relay"}, "CREDBATCH_SMTP_PASSWORD"),
        ({"CREDBATCH_SMTP_CA_FILE": "/nonexistent/ca.pem"}, "CREDBATCH_SMTP_CA_FILE"),
    ],
)
def test_bad_smtp_security_is_refused_naming_the_variable(
    extra: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({**PRODUCTION, **extra})


@pytest.mark.integration  # starts a child process, with no fixture to say so
def test_the_issuance_worker_refuses_to_start_in_production_without_smtp_tls() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CREDBATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "workers.issuance"],
        env={**env, **PRODUCTION, "CREDBATCH_SMTP_TLS": "none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "configuration error: CREDBATCH_SMTP_TLS=none" in result.stderr
    assert "production" in result.stderr


def test_the_webhook_kek_is_made_up_once_in_development_and_checked_in_production(
    tmp_path: Path,
) -> None:
    files = {
        "CREDBATCH_KEK_FILE": str(tmp_path / "kek"),
        "CREDBATCH_WEBHOOK_KEK_FILE": str(tmp_path / "webhook-kek"),
    }
    development = load_settings(files)
    assert len(development.webhook_kek_bytes()) == 32
    assert development.webhook_kek_bytes() != development.kek_bytes()
    assert load_settings(files).webhook_kek == development.webhook_kek
    # Production makes none up: the processes that need it refuse to start, naming it.
    with pytest.raises(ConfigError, match="CREDBATCH_WEBHOOK_KEK is required"):
        load_settings(PRODUCTION).webhook_kek_bytes()
    weak = base64.b64encode(bytes(32)).decode()
    with pytest.raises(ConfigError, match="CREDBATCH_WEBHOOK_KEK is refused in production"):
        load_settings({**PRODUCTION, "CREDBATCH_WEBHOOK_KEK": weak})
    key = os.urandom(32)
    given = load_settings({**PRODUCTION, "CREDBATCH_WEBHOOK_KEK": base64.b64encode(key).decode()})
    assert given.webhook_kek_bytes() == key


def test_each_process_role_defaults_to_its_role_on_the_owner_s_database(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CREDBATCH_DATABASE_URL": "postgresql://owner:pw@db.example:6543/issuing",
            "CREDBATCH_KEK_FILE": str(tmp_path / "kek"),
            "CREDBATCH_WEBHOOK_KEK_FILE": str(tmp_path / "webhook-kek"),
            "CREDBATCH_SIGNER_DATABASE_URL": "postgresql://signer:pw@other:5432/issuing",
        }
    )
    assert settings.public_database_url == "postgresql://credbatch_public@db.example:6543/issuing"
    assert (
        settings.refresher_database_url
        == "postgresql://credbatch_refresher@db.example:6543/issuing"
    )
    assert settings.signer_database_url == "postgresql://signer:pw@other:5432/issuing"


def test_the_public_process_needs_a_nonce_key_of_32_bytes(tmp_path: Path) -> None:
    files = {"CREDBATCH_KEK_FILE": str(tmp_path / "kek")}
    with pytest.raises(ConfigError, match="CREDBATCH_NONCE_KEY is required"):
        load_settings(files).nonce_key_bytes()
    with pytest.raises(ConfigError, match="CREDBATCH_NONCE_KEY must be at least 32 bytes, got 31"):
        load_settings({**files, "CREDBATCH_NONCE_KEY": "k" * 31}).nonce_key_bytes()
    key = "k" * 32
    assert load_settings({**files, "CREDBATCH_NONCE_KEY": key}).nonce_key_bytes() == key.encode()


def test_max_rows_stays_within_int32(tmp_path: Path) -> None:
    base = {"CREDBATCH_KEK_FILE": str(tmp_path / "kek")}
    assert load_settings({**base, "CREDBATCH_MAX_ROWS": "2147483646"}).max_rows == 2**31 - 2
    with pytest.raises(ConfigError, match="CREDBATCH_MAX_ROWS must be at most 2147483646"):
        load_settings({**base, "CREDBATCH_MAX_ROWS": "2147483647"})


def test_jobs_to_a_message_are_one_to_a_thousand(tmp_path: Path) -> None:
    base = {"CREDBATCH_KEK_FILE": str(tmp_path / "kek")}
    assert load_settings(base).job_bundle_size == 25
    assert load_settings({**base, "CREDBATCH_JOB_BUNDLE_SIZE": "1"}).job_bundle_size == 1
    with pytest.raises(ConfigError, match="CREDBATCH_JOB_BUNDLE_SIZE must be at least 1, got 0"):
        load_settings({**base, "CREDBATCH_JOB_BUNDLE_SIZE": "0"})
    with pytest.raises(ConfigError, match="CREDBATCH_JOB_BUNDLE_SIZE must be at most 1000"):
        load_settings({**base, "CREDBATCH_JOB_BUNDLE_SIZE": "1001"})
