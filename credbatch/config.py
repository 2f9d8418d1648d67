"""Typed configuration, read from the environment once and passed in.

Every process reads the same names (README, "Configuration", lists them all). A value in
the environment always wins over a default, so a test or an operator can point any process at
another database, broker, SMTP server or SMS endpoint. Missing or malformed values fail fast,
naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from credbatch.signing.kek_strength import WeakKekError, check_kek_strength

DEV_JWT_SECRET = "credbatch-dev-secret"  # noqa: S105 - the documented development default
APP_ROLE = "credbatch_app"
MONITOR_ROLE = "credbatch_monitor"
DEFAULT_KEK_FILE = Path(".local/kek")
SMTP_TLS_MODES = ("starttls", "implicit", "none")


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


def _derive_app_url(owner_url: str) -> str:
    parts = urlsplit(owner_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{APP_ROLE}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    value = _float(env, key, default)
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {value}")
    return value


def _optional_positive(env: Mapping[str, str], key: str) -> float | None:
    """A positive number, or None when unset (= unlimited)."""
    raw = env.get(key)
    if raw is None or raw == "":
        return None
    value = _float(env, key, 0.0)
    if not value > 0:
        raise ConfigError(f"{key} must be a positive number, got {raw!r}")
    return value


def _optional_count(env: Mapping[str, str], key: str) -> int | None:
    """A non-negative integer, or None when unset (= unlimited)."""
    raw = env.get(key)
    if raw is None or raw == "":
        return None
    return _int(env, key, 0, 0)


def _float_list(env: Mapping[str, str], key: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{key} must be a comma-separated list of seconds, got {raw!r}") from None
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{key} must list at least one positive delay, got {raw!r}")
    return values


def _smtp_tls(env: Mapping[str, str], mode: str) -> str:
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


def _smtp_credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    username = env.get("CREDBATCH_SMTP_USERNAME") or None
    password = env.get("CREDBATCH_SMTP_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError(
            "set both CREDBATCH_SMTP_USERNAME and CREDBATCH_SMTP_PASSWORD, or neither"
        )
    return username, password


def _smtp_ca_file(env: Mapping[str, str]) -> str | None:
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


def _switch(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{key} must be on or off, got {raw!r}")


def ensure_dev_kek(path: Path = DEFAULT_KEK_FILE) -> str:
    """Return the development KEK, generating it once into a git-ignored file."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


@dataclass(frozen=True)
class Settings:
    """Configuration shared by every credbatch process."""

    mode: str = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/credbatch"
    app_database_url: str = ""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "credbatch@localhost"
    smtp_pool_size: int = 8
    # starttls (upgrade on the submission port), implicit (TLS from the first byte, port 465)
    # or none (the development sink only).
    smtp_tls: str = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_ca_file: str | None = None
    sms_url: str = "http://127.0.0.1:8025"
    sms_account: str = "ACdev"
    sms_token: str = "dev"  # noqa: S105 - the local SMS sink accepts any token
    sms_from: str = "+15005550006"
    public_url: str = "http://127.0.0.1:8000"
    jwt_secret: str | None = DEV_JWT_SECRET
    jwks_url: str | None = None
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "credbatch-dev"
    jwt_audience: str = "credbatch"
    kek: str | None = None
    host: str = "127.0.0.1"
    templates_port: int = 50051
    uploads_port: int = 50052
    batches_port: int = 50053
    public_port: int = 8000
    grace_seconds: float = 10.0
    max_rows: int = 1_000_000
    max_bytes: int = 512 * 1024 * 1024
    default_region: str = "US"
    worker_prefetch: int = 100
    worker_concurrency: int = 32
    max_attempts: int = 5
    retry_delays: tuple[float, ...] = field(default=(5.0, 30.0, 120.0, 600.0))
    relay_batch_size: int = 500
    relay_publish_timeout: float = 10.0
    relay_poll_interval: float = 0.5
    # Seconds without progress after which a QUEUED or ISSUED record is dispatched again (on
    # top of the retry delay of its attempt, so a record waiting to be retried is not stuck).
    stuck_after: float = 300.0
    status_ttl: int = 300
    status_refresh_interval: float = 5.0
    public_rate: float = 20.0
    public_burst: int = 40
    claim_ttl: int = 30 * 24 * 3600
    # Jobs published but not finished (records QUEUED), overall, per tenant and per batch;
    # 0 = no cap. The default is about two workers' prefetch plus two seconds of issuance.
    relay_max_in_flight: int = 1000
    relay_tenant_in_flight: int = 750
    relay_batch_in_flight: int = 500
    # For tenants without a tenant_limits row; None = unlimited.
    default_emails_per_second: float | None = None
    default_sms_per_second: float | None = None
    default_max_open_records: int | None = None
    watch_max_per_caller: int = 10
    watch_max: int = 1000
    watch_max_seconds: float = 3600.0
    upload_idle_timeout: float = 30.0
    upload_max_concurrent_per_tenant: int = 4
    jwks_stale_seconds: float = 3600.0
    jwks_max_bytes: int = 64 * 1024
    jwt_max_lifetime: float = 24 * 3600.0
    reflection: bool = True

    @property
    def development(self) -> bool:
        return self.mode == "development"

    def kek_bytes(self) -> bytes:
        """The decoded KEK; raises ConfigError when it is absent or invalid."""
        if not self.kek:
            raise ConfigError("CREDBATCH_KEK is required (base64 of 32 random bytes)")
        return decode_kek(self.kek)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (or the given mapping)."""
    env = os.environ if env is None else env
    mode = env.get("CREDBATCH_MODE", "development")
    if mode not in ("development", "production"):
        raise ConfigError(f"CREDBATCH_MODE must be development or production, got {mode!r}")
    database_url = env.get("CREDBATCH_DATABASE_URL") or Settings.database_url
    jwks_url = env.get("CREDBATCH_JWKS_URL") or None
    jwt_secret = env.get("CREDBATCH_JWT_SECRET") or (None if jwks_url else DEV_JWT_SECRET)
    algorithm = env.get("CREDBATCH_JWT_ALGORITHM") or ("RS256" if jwks_url else "HS256")
    if mode == "production":
        if jwt_secret == DEV_JWT_SECRET:
            raise ConfigError(
                "CREDBATCH_JWT_SECRET is the development secret; refusing to start in "
                "production mode (set CREDBATCH_JWKS_URL or a strong secret)"
            )
        if jwt_secret is not None and len(jwt_secret.encode()) < 32:
            raise ConfigError("CREDBATCH_JWT_SECRET must be at least 32 bytes in production")
    check_jwks_location(mode, jwks_url)
    kek = env.get("CREDBATCH_KEK") or None
    if kek is None and mode == "development":
        kek = ensure_dev_kek(Path(env.get("CREDBATCH_KEK_FILE", str(DEFAULT_KEK_FILE))))
    smtp_username, smtp_password = _smtp_credentials(env)
    if kek is not None and mode == "production":
        try:
            check_kek_strength(decode_kek(kek))
        except WeakKekError as error:
            raise ConfigError(f"CREDBATCH_KEK is refused in production: {error}") from None
    return Settings(
        mode=mode,
        database_url=database_url,
        app_database_url=env.get("CREDBATCH_APP_DATABASE_URL") or _derive_app_url(database_url),
        amqp_url=env.get("CREDBATCH_AMQP_URL") or Settings.amqp_url,
        smtp_host=env.get("CREDBATCH_SMTP_HOST") or Settings.smtp_host,
        smtp_port=_int(env, "CREDBATCH_SMTP_PORT", Settings.smtp_port, 1),
        smtp_from=env.get("CREDBATCH_SMTP_FROM") or Settings.smtp_from,
        smtp_pool_size=_int(env, "CREDBATCH_SMTP_POOL_SIZE", Settings.smtp_pool_size, 1),
        smtp_tls=_smtp_tls(env, mode),
        smtp_username=smtp_username,
        smtp_password=smtp_password,
        smtp_ca_file=_smtp_ca_file(env),
        sms_url=(env.get("CREDBATCH_SMS_URL") or Settings.sms_url).rstrip("/"),
        sms_account=env.get("CREDBATCH_SMS_ACCOUNT") or Settings.sms_account,
        sms_token=env.get("CREDBATCH_SMS_TOKEN") or Settings.sms_token,
        sms_from=env.get("CREDBATCH_SMS_FROM") or Settings.sms_from,
        public_url=(env.get("CREDBATCH_PUBLIC_URL") or Settings.public_url).rstrip("/"),
        jwt_secret=jwt_secret,
        jwks_url=jwks_url,
        jwt_algorithm=algorithm,
        jwt_issuer=env.get("CREDBATCH_JWT_ISSUER") or Settings.jwt_issuer,
        jwt_audience=env.get("CREDBATCH_JWT_AUDIENCE") or Settings.jwt_audience,
        kek=kek,
        host=env.get("CREDBATCH_HOST") or Settings.host,
        templates_port=_int(env, "CREDBATCH_TEMPLATES_PORT", Settings.templates_port),
        uploads_port=_int(env, "CREDBATCH_UPLOADS_PORT", Settings.uploads_port),
        batches_port=_int(env, "CREDBATCH_BATCHES_PORT", Settings.batches_port),
        public_port=_int(env, "CREDBATCH_PUBLIC_PORT", Settings.public_port),
        grace_seconds=_float(env, "CREDBATCH_GRACE_SECONDS", Settings.grace_seconds),
        max_rows=_int(env, "CREDBATCH_MAX_ROWS", Settings.max_rows, 1),
        max_bytes=_int(env, "CREDBATCH_MAX_BYTES", Settings.max_bytes, 1),
        default_region=env.get("CREDBATCH_DEFAULT_REGION") or Settings.default_region,
        worker_prefetch=_int(env, "CREDBATCH_WORKER_PREFETCH", Settings.worker_prefetch, 1),
        worker_concurrency=_int(
            env, "CREDBATCH_WORKER_CONCURRENCY", Settings.worker_concurrency, 1
        ),
        max_attempts=_int(env, "CREDBATCH_MAX_ATTEMPTS", Settings.max_attempts, 1),
        retry_delays=_float_list(env, "CREDBATCH_RETRY_DELAYS", Settings().retry_delays),
        relay_batch_size=_int(env, "CREDBATCH_RELAY_BATCH_SIZE", Settings.relay_batch_size, 1),
        relay_publish_timeout=_float(
            env, "CREDBATCH_RELAY_PUBLISH_TIMEOUT", Settings.relay_publish_timeout
        ),
        relay_poll_interval=_float(
            env, "CREDBATCH_RELAY_POLL_INTERVAL", Settings.relay_poll_interval
        ),
        stuck_after=_positive(env, "CREDBATCH_STUCK_AFTER", Settings.stuck_after),
        status_ttl=_int(env, "CREDBATCH_STATUS_TTL", Settings.status_ttl, 1),
        status_refresh_interval=_positive(
            env, "CREDBATCH_STATUS_REFRESH_INTERVAL", Settings.status_refresh_interval
        ),
        public_rate=_positive(env, "CREDBATCH_PUBLIC_RATE", Settings.public_rate),
        public_burst=_int(env, "CREDBATCH_PUBLIC_BURST", Settings.public_burst, 1),
        claim_ttl=_int(env, "CREDBATCH_CLAIM_TTL", Settings.claim_ttl, 1),
        relay_max_in_flight=_int(
            env, "CREDBATCH_RELAY_MAX_IN_FLIGHT", Settings.relay_max_in_flight
        ),
        relay_tenant_in_flight=_int(
            env, "CREDBATCH_RELAY_TENANT_IN_FLIGHT", Settings.relay_tenant_in_flight
        ),
        relay_batch_in_flight=_int(
            env, "CREDBATCH_RELAY_BATCH_IN_FLIGHT", Settings.relay_batch_in_flight
        ),
        default_emails_per_second=_optional_positive(env, "CREDBATCH_DEFAULT_EMAILS_PER_SECOND"),
        default_sms_per_second=_optional_positive(env, "CREDBATCH_DEFAULT_SMS_PER_SECOND"),
        default_max_open_records=_optional_count(env, "CREDBATCH_DEFAULT_MAX_OPEN_RECORDS"),
        watch_max_per_caller=_int(
            env, "CREDBATCH_WATCH_MAX_PER_CALLER", Settings.watch_max_per_caller, 1
        ),
        watch_max=_int(env, "CREDBATCH_WATCH_MAX", Settings.watch_max, 1),
        watch_max_seconds=_positive(env, "CREDBATCH_WATCH_MAX_SECONDS", Settings.watch_max_seconds),
        upload_idle_timeout=_positive(
            env, "CREDBATCH_UPLOAD_IDLE_TIMEOUT", Settings.upload_idle_timeout
        ),
        upload_max_concurrent_per_tenant=_int(
            env,
            "CREDBATCH_UPLOAD_MAX_CONCURRENT_PER_TENANT",
            Settings.upload_max_concurrent_per_tenant,
            1,
        ),
        jwks_stale_seconds=_float(env, "CREDBATCH_JWKS_STALE_SECONDS", Settings.jwks_stale_seconds),
        jwks_max_bytes=_int(env, "CREDBATCH_JWKS_MAX_BYTES", Settings.jwks_max_bytes, 1024),
        jwt_max_lifetime=_positive(env, "CREDBATCH_JWT_MAX_LIFETIME", Settings.jwt_max_lifetime),
        reflection=_switch(env, "CREDBATCH_REFLECTION", mode == "development"),
    )
