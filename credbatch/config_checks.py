"""The checks on settings that must agree: SMTP encryption, keys, token sources, drain time.

The security checks refuse, in production, a value that would leak invitations or keys; the
drain check refuses, in any mode, a grace period a slow send cannot finish in. Each names the
variables; the development defaults live beside them.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from pathlib import Path

from credbatch.env_values import ConfigError
from credbatch.signing.kek_strength import WeakKekError, check_kek_strength

DEV_SIGNER_TOKEN = "credbatch-dev-signer-token"  # noqa: S105 - the development default
DEFAULT_KEK_FILE = Path(".local/kek")
DEFAULT_WEBHOOK_KEK_FILE = Path(".local/webhook-kek")
SMTP_TLS_MODES = ("starttls", "implicit", "none")
# What a stopping worker still does after a send's last reply: stamp it sent, write the
# group's outcomes in one transaction, ack. Milliseconds on a healthy database; a second
# leaves room for a busy one.
DRAIN_MARGIN_SECONDS = 1.0


def smtp_tls_mode(env: Mapping[str, str], mode: str) -> str:
    default = "none" if mode == "development" else "starttls"
    tls = (env.get("CREDBATCH_SMTP_TLS") or default).lower()
    if tls not in SMTP_TLS_MODES:
        raise ConfigError(
            f"CREDBATCH_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, got {tls!r}"
        )
    if tls == "none" and mode == "production":
        # Invitations carry claim links, and AUTH would send the relay's password in clear.
        raise ConfigError(
            "CREDBATCH_SMTP_TLS=none sends invitations (and any SMTP password) unencrypted; "
            "refusing to start in production mode (use starttls or implicit)"
        )
    return tls


def check_drain_time(grace: float, *, smtp_timeout: float, sms_timeout: float) -> None:
    """Refuse a grace period that a send waiting out its timeout would outlast.

    A stopping worker finishes the sends it has begun within ``grace`` seconds, then cancels
    what is left (its jobs are redelivered). A grace no longer than a provider's timeout
    cancels exactly the sends a slow provider was about to answer, and their records' next
    worker sends them again.

    Raises:
        ConfigError: ``grace`` is below either timeout plus the margin, naming all three.
    """
    for name, timeout in (
        ("CREDBATCH_SMTP_TIMEOUT", smtp_timeout),
        ("CREDBATCH_SMS_TIMEOUT", sms_timeout),
    ):
        if grace < timeout + DRAIN_MARGIN_SECONDS:
            raise ConfigError(
                f"CREDBATCH_GRACE_SECONDS ({grace:g}) must be at least {name} ({timeout:g}) "
                f"plus {DRAIN_MARGIN_SECONDS:g} s, or a stopping worker cancels sends that a "
                f"slow provider is still answering; raise CREDBATCH_GRACE_SECONDS to "
                f"{timeout + DRAIN_MARGIN_SECONDS:g} or more, or lower {name}"
            )


def smtp_credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    username = env.get("CREDBATCH_SMTP_USERNAME") or None
    password = env.get("CREDBATCH_SMTP_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError(
            "set both CREDBATCH_SMTP_USERNAME and CREDBATCH_SMTP_PASSWORD, or neither"
        )
    return username, password


def smtp_ca_file(env: Mapping[str, str]) -> str | None:
    ca_file = env.get("CREDBATCH_SMTP_CA_FILE") or None
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"CREDBATCH_SMTP_CA_FILE is not a readable file: {ca_file!r}")
    return ca_file


def decode_kek(raw: str, source: str = "CREDBATCH_KEK") -> bytes:
    """Decode a base64 key-encryption key, which must be exactly 32 bytes."""
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source} is not valid base64") from None
    if len(key) != 32:
        raise ConfigError(f"{source} must decode to 32 bytes, got {len(key)}")
    return key


def check_jwks_location(mode: str, location: str | None) -> None:
    """Production fetches a JWKS over https only: over http anyone on the path could swap in
    their own keys and mint tokens. A file path stays allowed (its integrity is the host's).

    Raises:
        ConfigError: production with an ``http://`` (or other non-https) URL.
    """
    if mode != "production" or not location or "://" not in location:
        return
    if location.startswith("file://"):
        return
    if not location.startswith("https://"):
        raise ConfigError(
            "CREDBATCH_JWKS_URL must be an https:// URL or a file path in production, got "
            f"{location.split('://', 1)[0]}://"
        )


def encryption_key(
    env: Mapping[str, str], mode: str, name: str, file_name: str, default_file: Path
) -> str | None:
    """A key-encryption key (base64 of 32 bytes) from the variable ``name``.

    Development makes one up where none is given, once, into a git-ignored file (the
    variable ``file_name`` names another); production never does, and refuses a key that
    does not look drawn from a random source. Whether a process needs the key is its own
    concern: a process without one fails when it asks for it.
    """
    key = env.get(name) or None
    if key is None and mode == "development":
        key = ensure_dev_kek(Path(env.get(file_name, str(default_file))))
    if key is not None and mode == "production":
        try:
            check_kek_strength(decode_kek(key, name))
        except WeakKekError as error:
            raise ConfigError(f"{name} is refused in production: {error}") from None
    return key


def ensure_dev_kek(path: Path = DEFAULT_KEK_FILE) -> str:
    """Return the development KEK, generating it once into a git-ignored file."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def signer_token(env: Mapping[str, str], mode: str) -> str | None:
    token = env.get("CREDBATCH_SIGNER_TOKEN") or None
    if token is None and mode == "development":
        return DEV_SIGNER_TOKEN
    if token is not None and mode == "production" and len(token.encode()) < 32:
        raise ConfigError("CREDBATCH_SIGNER_TOKEN must be at least 32 bytes in production")
    if token == DEV_SIGNER_TOKEN and mode == "production":
        raise ConfigError("CREDBATCH_SIGNER_TOKEN is the development token; refusing production")
    return token
