"""Typed configuration, read from the environment once and passed in.

Every process reads the same names (README, "Configuration", lists them all). A value in
the environment always wins over a default, so a test or an operator can point any process at
another database, broker, SMTP server or SMS endpoint. Missing or malformed values fail fast,
naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from credbatch.bounce_settings import bounce_settings
from credbatch.config_checks import (
    DEFAULT_KEK_FILE,
    DEFAULT_WEBHOOK_KEK_FILE,
    DEV_SIGNER_TOKEN,
    SMTP_TLS_MODES,
    check_drain_time,
    check_jwks_location,
    decode_kek,
    encryption_key,
    ensure_dev_kek,
    signer_token,
    smtp_ca_file,
    smtp_credentials,
    smtp_tls_mode,
)
from credbatch.db.pool_sizes import PoolSizes, pool_sizes
from credbatch.env_values import (
    ConfigError,
    Network,
    derive_role_url,
    env_float,
    env_float_list,
    env_int,
    env_networks,
    env_optional_count,
    env_optional_positive,
    env_positive,
    env_switch,
)
from credbatch.retention_settings import retention_settings
from credbatch.webhook_settings import webhook_settings

__all__ = [
    "APP_ROLE",
    "DEFAULT_KEK_FILE",
    "DEFAULT_WEBHOOK_KEK_FILE",
    "DEV_JWT_SECRET",
    "DEV_SIGNER_TOKEN",
    "JANITOR_ROLE",
    "MONITOR_ROLE",
    "PUBLIC_ROLE",
    "REFRESHER_ROLE",
    "RELAY_ROLE",
    "SIGNER_ROLE",
    "SMTP_TLS_MODES",
    "WEBHOOKS_ROLE",
    "ConfigError",
    "Settings",
    "check_jwks_location",
    "decode_kek",
    "ensure_dev_kek",
    "load_settings",
]

DEV_JWT_SECRET = "credbatch-dev-secret"  # noqa: S105 - the documented development default
APP_ROLE = "credbatch_app"
MONITOR_ROLE = "credbatch_monitor"
# The outbox relay's role: the only one that may claim and mark records of every tenant.
RELAY_ROLE = "credbatch_relay"
# The webhook dispatchers' role: the only one that may claim deliveries of every tenant.
WEBHOOKS_ROLE = "credbatch_webhooks"
# The public endpoints' role: no table, only the functions that answer what they serve.
PUBLIC_ROLE = "credbatch_public"
# The signer's role: a stored credential and its tenant's wrapped key, through functions.
SIGNER_ROLE = "credbatch_signer"
# The issuance workers' status list refresher: lists every tenant's due status list tokens.
REFRESHER_ROLE = "credbatch_refresher"
# The janitor: the retention purge and the pruning, across tenants, through functions only.
JANITOR_ROLE = "credbatch_janitor"
NONCE_KEY_MIN_BYTES = 32
# Row numbers and counts are int32 on the wire, and the validator reads one row past the limit.
MAX_ROWS_LIMIT = 2**31 - 2


@dataclass(frozen=True)
class Settings:
    """Configuration shared by every credbatch process."""

    mode: str = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/credbatch"
    app_database_url: str = ""
    relay_database_url: str = ""
    public_database_url: str = ""
    signer_database_url: str = ""
    refresher_database_url: str = ""
    janitor_database_url: str = ""
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
    # Seconds the worker waits for each SMTP reply, and for the SMS provider's answer.
    smtp_timeout: float = 10.0
    sms_timeout: float = 10.0
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
    # Encrypts webhook signing secrets at rest; only the webhook service and dispatchers.
    webhook_kek: str | None = None
    host: str = "127.0.0.1"
    templates_port: int = 50051
    uploads_port: int = 50052
    batches_port: int = 50053
    public_port: int = 8000
    metrics_port: int = 0
    # grpc.health.v1 of the processes without a gRPC API (relay, workers, webhook
    # dispatchers); 0 serves none. The gRPC services answer health on their own port.
    health_port: int = 0
    # Drain time on SIGTERM: above the slowest send (check_drain_time), so a send in flight
    # ends, and its outcome is written, before the process stops.
    grace_seconds: float = 30.0
    max_rows: int = 1_000_000
    max_bytes: int = 512 * 1024 * 1024
    default_region: str = "US"
    worker_prefetch: int = 100
    worker_concurrency: int = 32
    max_attempts: int = 5
    retry_delays: tuple[float, ...] = field(default=(5.0, 30.0, 120.0, 600.0))
    relay_batch_size: int = 500
    # Consecutive jobs of one batch the relay puts in one message.
    job_bundle_size: int = 25
    relay_publish_timeout: float = 10.0
    relay_poll_interval: float = 0.5
    # Seconds without progress after which a QUEUED or ISSUED record is dispatched again (on
    # top of the retry delay of its attempt, so a record waiting to be retried is not stuck).
    stuck_after: float = 300.0
    # Seconds after a record is issued during which a second job for it leaves the invitation
    # to the worker that issued it (waits, then finds it invited, or invites it if that worker
    # died); see workers.issuance.triage.
    invite_lease: float = 15.0
    # Seconds between the relay's expiry passes (INVITED records whose claim link ran out).
    expiry_interval: float = 30.0
    status_ttl: int = 300
    status_refresh_interval: float = 5.0
    public_rate: float = 20.0
    public_burst: int = 40
    # Proxies (CIDR networks) whose X-Forwarded-For the public endpoints believe; none by
    # default, so a client cannot pick its own address (services/public/client_address.py).
    trusted_proxies: tuple[Network, ...] = ()
    claim_ttl: int = 30 * 24 * 3600
    # Seconds in a "day" of a batch's reminder days (tests make a day a second).
    reminder_day_seconds: float = 86400.0
    # Seconds a credential offer's pre-authorized code can be exchanged after issuance.
    offer_ttl: int = 7 * 24 * 3600
    signer_port: int = 50055
    # Where the public endpoints reach the signer, and the secret both sides share; without
    # one the public endpoints answer credential requests with 503.
    signer_url: str = "http://127.0.0.1:50055"
    signer_token: str | None = None
    # The MAC key of the public endpoints' stateless c_nonces, the same for every replica (a
    # nonce from one is checked by another); only the public process needs it.
    nonce_key: str | None = None
    # Jobs published but not finished (records QUEUED), overall, per tenant and per batch;
    # 0 = no cap. The default is two workers' prefetch (200) plus a second or two of what two
    # workers issue without certificates (their measured rates: bench/RESULTS.md). More keeps
    # the workers no busier; it only lengthens the queue that a newly arriving batch waits
    # behind (up to its batch's share of it).
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
    # Processes validating blocks of large uploads beside each uploads process; 0 or 1:
    # every upload is validated in the uploads process itself.
    validation_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    jwks_stale_seconds: float = 3600.0
    jwks_max_bytes: int = 64 * 1024
    jwt_max_lifetime: float = 24 * 3600.0
    reflection: bool = True
    webhooks_port: int = 50054
    tenants_port: int = 50056
    # Delays before the 2nd, 3rd, ... attempt of a webhook delivery (each with jitter); when
    # they are used up the delivery fails.
    webhook_retry_schedule: tuple[float, ...] = field(
        default=(5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
    )
    webhook_timeout: float = 15.0
    # How long a claimed delivery stays leased to its dispatcher; a dispatcher that dies
    # mid-delivery leaves it due again after this (so: at least once, never lost).
    webhook_lease_seconds: float = 60.0
    webhook_endpoint_concurrency: int = 4
    webhook_dispatch_concurrency: int = 32
    webhook_poll_interval: float = 1.0
    webhook_disable_after: float = 5 * 24 * 3600.0
    # Port of the dispatcher's metrics endpoint; None = none served.
    # The dispatchers' claim connects as their own role (WEBHOOKS_ROLE); the rest of their
    # work runs in tenant transactions as the application role.
    webhooks_database_url: str = ""
    # Template renders run in processes of their own (credbatch.templating.runner): this many
    # per worker or template service process; one tenant uses at most all but one of them.
    render_processes: int = 2
    # Seconds a render may run past its templates' time budget before its process is killed
    # (and replaced); its CPU time is limited to the same, rounded up to whole seconds.
    render_grace_seconds: float = 1.0
    # Address space of each render process (MiB); one starts at about 70.
    render_memory_mb: int = 512
    # Envelope senders bounce+{token}@bounce_domain (credbatch.delivery.verp); None sends
    # invitations from smtp_from with no bounce tracking. The key makes tokens unforgeable.
    bounce_domain: str | None = None
    bounce_key: str | None = None
    bounce_port: int = 2525
    # Largest bounce the receiver takes (announced as SIZE, enforced while reading).
    bounce_max_bytes: int = 256 * 1024
    # Each pool's maximum connections (CREDBATCH_*_POOL_MAX): docs/connections.md adds them up.
    pools: PoolSizes = field(default_factory=PoolSizes)
    # How long data is kept (credbatch/retention_settings.py; docs/operations.md, "Data
    # retention"): personal data in days after a batch ends, the rest in seconds.
    retention_days: int = 30
    webhook_retention_days: int = 30
    nonce_retention: float = 3600.0
    offer_retention: float = 7 * 24 * 3600.0
    access_token_retention: float = 24 * 3600.0
    idempotency_retention: float = 7 * 24 * 3600.0
    dispatch_retention: float = 24 * 3600.0
    # Send stamps (record_sends) of records whose outcome is written; an SMS's receipts name
    # its message id kept there, and providers report within hours.
    send_stamp_retention: float = 7 * 24 * 3600.0
    # Seconds between the janitor's passes, and the rows each of its transactions touches.
    janitor_interval: float = 60.0
    janitor_step_rows: int = 1000
    # Seconds the janitor rests between two steps: its share of a busy database stays bounded.
    janitor_step_pause: float = 0.1
    # The most of the time the janitor works: after a slow step it rests longer than the pause
    # (workers.janitor.janitor.rest_after).
    janitor_share: float = 0.02
    # Days the audit trail is kept (CREDBATCH_AUDIT_RETENTION_DAYS): far longer than the
    # personal data, since it is the record of who did what with it (janitor_audit_prune).
    audit_retention_days: int = 400

    @property
    def development(self) -> bool:
        return self.mode == "development"

    def kek_bytes(self) -> bytes:
        """The decoded KEK; raises ConfigError when it is absent or invalid."""
        if not self.kek:
            raise ConfigError("CREDBATCH_KEK is required (base64 of 32 random bytes)")
        return decode_kek(self.kek)

    def nonce_key_bytes(self) -> bytes:
        """The c_nonce MAC key; raises ConfigError when it is absent or too short."""
        if not self.nonce_key:
            raise ConfigError(
                "CREDBATCH_NONCE_KEY is required by the public endpoints (at least 32 random "
                "bytes, the same for every replica)"
            )
        if len(self.nonce_key.encode()) < NONCE_KEY_MIN_BYTES:
            raise ConfigError(
                f"CREDBATCH_NONCE_KEY must be at least {NONCE_KEY_MIN_BYTES} bytes, "
                f"got {len(self.nonce_key.encode())}"
            )
        return self.nonce_key.encode()

    def webhook_kek_bytes(self) -> bytes:
        """The decoded webhook KEK; raises ConfigError when it is absent or invalid."""
        if not self.webhook_kek:
            raise ConfigError("CREDBATCH_WEBHOOK_KEK is required (base64 of 32 random bytes)")
        return decode_kek(self.webhook_kek, "CREDBATCH_WEBHOOK_KEK")

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
    kek = encryption_key(env, mode, "CREDBATCH_KEK", "CREDBATCH_KEK_FILE", DEFAULT_KEK_FILE)
    webhook_kek = encryption_key(
        env, mode, "CREDBATCH_WEBHOOK_KEK", "CREDBATCH_WEBHOOK_KEK_FILE", DEFAULT_WEBHOOK_KEK_FILE
    )
    smtp_username, smtp_password = smtp_credentials(env)
    grace_seconds = env_positive(env, "CREDBATCH_GRACE_SECONDS", Settings.grace_seconds)
    smtp_timeout = env_positive(env, "CREDBATCH_SMTP_TIMEOUT", Settings.smtp_timeout)
    sms_timeout = env_positive(env, "CREDBATCH_SMS_TIMEOUT", Settings.sms_timeout)
    check_drain_time(grace_seconds, smtp_timeout=smtp_timeout, sms_timeout=sms_timeout)
    worker_prefetch = env_int(env, "CREDBATCH_WORKER_PREFETCH", Settings.worker_prefetch, 1)
    return Settings(
        mode=mode,
        database_url=database_url,
        app_database_url=env.get("CREDBATCH_APP_DATABASE_URL")
        or derive_role_url(database_url, APP_ROLE),
        relay_database_url=env.get("CREDBATCH_RELAY_DATABASE_URL")
        or derive_role_url(database_url, RELAY_ROLE),
        public_database_url=env.get("CREDBATCH_PUBLIC_DATABASE_URL")
        or derive_role_url(database_url, PUBLIC_ROLE),
        signer_database_url=env.get("CREDBATCH_SIGNER_DATABASE_URL")
        or derive_role_url(database_url, SIGNER_ROLE),
        refresher_database_url=env.get("CREDBATCH_REFRESHER_DATABASE_URL")
        or derive_role_url(database_url, REFRESHER_ROLE),
        janitor_database_url=env.get("CREDBATCH_JANITOR_DATABASE_URL")
        or derive_role_url(database_url, JANITOR_ROLE),
        amqp_url=env.get("CREDBATCH_AMQP_URL") or Settings.amqp_url,
        smtp_host=env.get("CREDBATCH_SMTP_HOST") or Settings.smtp_host,
        smtp_port=env_int(env, "CREDBATCH_SMTP_PORT", Settings.smtp_port, 1),
        smtp_from=env.get("CREDBATCH_SMTP_FROM") or Settings.smtp_from,
        smtp_pool_size=env_int(env, "CREDBATCH_SMTP_POOL_SIZE", Settings.smtp_pool_size, 1),
        smtp_tls=smtp_tls_mode(env, mode),
        smtp_username=smtp_username,
        smtp_password=smtp_password,
        smtp_ca_file=smtp_ca_file(env),
        smtp_timeout=smtp_timeout,
        sms_timeout=sms_timeout,
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
        webhook_kek=webhook_kek,
        host=env.get("CREDBATCH_HOST") or Settings.host,
        templates_port=env_int(env, "CREDBATCH_TEMPLATES_PORT", Settings.templates_port),
        uploads_port=env_int(env, "CREDBATCH_UPLOADS_PORT", Settings.uploads_port),
        batches_port=env_int(env, "CREDBATCH_BATCHES_PORT", Settings.batches_port),
        public_port=env_int(env, "CREDBATCH_PUBLIC_PORT", Settings.public_port),
        metrics_port=env_int(env, "CREDBATCH_METRICS_PORT", Settings.metrics_port),
        health_port=env_int(env, "CREDBATCH_HEALTH_PORT", Settings.health_port, 0),
        grace_seconds=grace_seconds,
        max_rows=env_int(env, "CREDBATCH_MAX_ROWS", Settings.max_rows, 1, MAX_ROWS_LIMIT),
        max_bytes=env_int(env, "CREDBATCH_MAX_BYTES", Settings.max_bytes, 1),
        default_region=env.get("CREDBATCH_DEFAULT_REGION") or Settings.default_region,
        worker_prefetch=worker_prefetch,
        worker_concurrency=env_int(
            env, "CREDBATCH_WORKER_CONCURRENCY", Settings.worker_concurrency, 1
        ),
        max_attempts=env_int(env, "CREDBATCH_MAX_ATTEMPTS", Settings.max_attempts, 1),
        retry_delays=env_float_list(env, "CREDBATCH_RETRY_DELAYS", Settings().retry_delays),
        relay_batch_size=env_int(env, "CREDBATCH_RELAY_BATCH_SIZE", Settings.relay_batch_size, 1),
        job_bundle_size=env_int(
            env, "CREDBATCH_JOB_BUNDLE_SIZE", Settings.job_bundle_size, 1, 1000
        ),
        relay_publish_timeout=env_float(
            env, "CREDBATCH_RELAY_PUBLISH_TIMEOUT", Settings.relay_publish_timeout
        ),
        relay_poll_interval=env_float(
            env, "CREDBATCH_RELAY_POLL_INTERVAL", Settings.relay_poll_interval
        ),
        stuck_after=env_positive(env, "CREDBATCH_STUCK_AFTER", Settings.stuck_after),
        invite_lease=env_float(env, "CREDBATCH_INVITE_LEASE_SECONDS", Settings.invite_lease),
        expiry_interval=env_positive(env, "CREDBATCH_EXPIRY_INTERVAL", Settings.expiry_interval),
        status_ttl=env_int(env, "CREDBATCH_STATUS_TTL", Settings.status_ttl, 1),
        status_refresh_interval=env_positive(
            env, "CREDBATCH_STATUS_REFRESH_INTERVAL", Settings.status_refresh_interval
        ),
        public_rate=env_positive(env, "CREDBATCH_PUBLIC_RATE", Settings.public_rate),
        public_burst=env_int(env, "CREDBATCH_PUBLIC_BURST", Settings.public_burst, 1),
        trusted_proxies=env_networks(env, "CREDBATCH_TRUSTED_PROXIES"),
        claim_ttl=env_int(env, "CREDBATCH_CLAIM_TTL", Settings.claim_ttl, 1),
        reminder_day_seconds=env_positive(
            env, "CREDBATCH_REMINDER_DAY_SECONDS", Settings.reminder_day_seconds
        ),
        offer_ttl=env_int(env, "CREDBATCH_OFFER_TTL", Settings.offer_ttl, 1),
        signer_port=env_int(env, "CREDBATCH_SIGNER_PORT", Settings.signer_port),
        tenants_port=env_int(env, "CREDBATCH_TENANTS_PORT", Settings.tenants_port),
        signer_url=(env.get("CREDBATCH_SIGNER_URL") or Settings.signer_url).rstrip("/"),
        signer_token=signer_token(env, mode),
        nonce_key=env.get("CREDBATCH_NONCE_KEY") or None,
        relay_max_in_flight=env_int(
            env, "CREDBATCH_RELAY_MAX_IN_FLIGHT", Settings.relay_max_in_flight
        ),
        relay_tenant_in_flight=env_int(
            env, "CREDBATCH_RELAY_TENANT_IN_FLIGHT", Settings.relay_tenant_in_flight
        ),
        relay_batch_in_flight=env_int(
            env, "CREDBATCH_RELAY_BATCH_IN_FLIGHT", Settings.relay_batch_in_flight
        ),
        default_emails_per_second=env_optional_positive(env, "CREDBATCH_DEFAULT_EMAILS_PER_SECOND"),
        default_sms_per_second=env_optional_positive(env, "CREDBATCH_DEFAULT_SMS_PER_SECOND"),
        default_max_open_records=env_optional_count(env, "CREDBATCH_DEFAULT_MAX_OPEN_RECORDS"),
        watch_max_per_caller=env_int(
            env, "CREDBATCH_WATCH_MAX_PER_CALLER", Settings.watch_max_per_caller, 1
        ),
        watch_max=env_int(env, "CREDBATCH_WATCH_MAX", Settings.watch_max, 1),
        watch_max_seconds=env_positive(
            env, "CREDBATCH_WATCH_MAX_SECONDS", Settings.watch_max_seconds
        ),
        upload_idle_timeout=env_positive(
            env, "CREDBATCH_UPLOAD_IDLE_TIMEOUT", Settings.upload_idle_timeout
        ),
        upload_max_concurrent_per_tenant=env_int(
            env,
            "CREDBATCH_UPLOAD_MAX_CONCURRENT_PER_TENANT",
            Settings.upload_max_concurrent_per_tenant,
            1,
        ),
        validation_processes=env_int(
            env, "CREDBATCH_VALIDATION_PROCESSES", os.cpu_count() or 1, 0, 256
        ),
        jwks_stale_seconds=env_float(
            env, "CREDBATCH_JWKS_STALE_SECONDS", Settings.jwks_stale_seconds
        ),
        jwks_max_bytes=env_int(env, "CREDBATCH_JWKS_MAX_BYTES", Settings.jwks_max_bytes, 1024),
        jwt_max_lifetime=env_positive(env, "CREDBATCH_JWT_MAX_LIFETIME", Settings.jwt_max_lifetime),
        reflection=env_switch(env, "CREDBATCH_REFLECTION", mode == "development"),
        **webhook_settings(env, Settings()),
        **bounce_settings(env, Settings()),
        webhooks_database_url=env.get("CREDBATCH_WEBHOOKS_DATABASE_URL")
        or derive_role_url(database_url, WEBHOOKS_ROLE),
        render_processes=env_int(env, "CREDBATCH_RENDER_PROCESSES", Settings.render_processes, 1),
        render_grace_seconds=env_positive(
            env, "CREDBATCH_RENDER_GRACE_SECONDS", Settings.render_grace_seconds
        ),
        render_memory_mb=env_int(env, "CREDBATCH_RENDER_MEMORY_MB", Settings.render_memory_mb, 128),
        pools=pool_sizes(env, worker_prefetch),
        **retention_settings(env, Settings()),
        audit_retention_days=env_int(
            env, "CREDBATCH_AUDIT_RETENTION_DAYS", Settings.audit_retention_days, 1
        ),
    )
