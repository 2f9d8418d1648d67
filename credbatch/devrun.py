"""`make run`: the whole system in the foreground, against the local PostgreSQL and RabbitMQ.

Creates the database and roles, applies migrations, declares the broker topology, then starts
the local SMTP and SMS sinks, the five gRPC services, the internal signer, the public HTTP
process, the bounce receiver, the outbox relay, one webhook dispatcher and the issuance workers
as child processes,
each prefixed in the output. Each process serves its metrics on its own port (``METRICS_PORTS``;
worker N on 9110 + N, dispatcher N on 9120 + N) unless CREDBATCH_METRICS_PORT=0 turns them all
off. The processes without a gRPC API (relay, dispatcher, workers) serve gRPC health 100 above
their metrics port (relay 9205, dispatcher N 9220 + N, worker N 9210 + N). Ctrl-C or SIGTERM
stops them all (SIGTERM first, so each drains within its grace period). If one child dies, the
rest are stopped too: a half-running system would only hide the failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from credbatch.config import ConfigError, Settings, load_settings
from credbatch.db.migrate import MigrationError, ensure_database, migrate
from credbatch.messaging.topology import connect, declare_topology

MAIL_DIR = ".local/mail"
SMS_DIR = ".local/sms"
METRICS_PORTS = {
    "templates": 9101,
    "uploads": 9102,
    "batch_status": 9103,
    "public": 9104,
    "webhooks": 9106,
    "signer": 9107,
    "bounces": 9108,
    "tenants": 9109,
}
# Envelope senders of make run's invitations are on this domain, and the sinks send their
# bounces and receipts to the receiver on CREDBATCH_BOUNCE_PORT, as an MX record would.
DEV_BOUNCE_DOMAIN = "bounces.localhost"
# Recipients the sinks bounce (email) or fail (SMS) unless CREDBATCH_DEV_BOUNCE_PATTERN says
# otherwise: the demo's addresses at bounce.example, and one phone number in a hundred.
DEV_BOUNCE_PATTERN = "*@bounce.example,+1202555??13"
RELAY_METRICS_PORT = 9105
FIRST_WORKER_METRICS_PORT = 9111
FIRST_DISPATCHER_METRICS_PORT = 9121
# The gRPC services answer health on their API port; the others on their metrics port + 100.
HEALTH_PORT_OFFSET = 100


@dataclass(frozen=True)
class Component:
    name: str
    args: tuple[str, ...]
    listens: str = ""
    metrics_port: int = 0
    # Environment of this component only, on top of the shared one.
    env: tuple[tuple[str, str], ...] = ()
    # Serves gRPC health on CREDBATCH_HEALTH_PORT (it has no gRPC API port to answer it on).
    health_port: int = 0


def components(settings: Settings, workers: int) -> list[Component]:
    sms = urlsplit(settings.sms_url)
    host = settings.host
    reports: tuple[str, ...] = ()
    if settings.bounce_domain is not None:
        reports = (
            "--report-to",
            f"{host}:{settings.bounce_port}",
            "--bounce-domain",
            settings.bounce_domain,
            "--receipts",
        )
    found = [
        Component(
            "smtp-sink",
            (
                "-m",
                "credbatch.devsinks.smtp",
                "--port",
                str(settings.smtp_port),
                "--dir",
                MAIL_DIR,
                *reports,
            ),
            f"smtp://{settings.smtp_host}:{settings.smtp_port} (mail saved in {MAIL_DIR}/)",
        ),
        Component(
            "sms-sink",
            (
                "-m",
                "credbatch.devsinks.sms",
                "--port",
                str(sms.port or 8025),
                "--dir",
                SMS_DIR,
                "--token",
                settings.sms_token,
                "--receipts",
            ),
            f"{settings.sms_url} (messages saved in {SMS_DIR}/)",
        ),
        Component(
            "templates",
            ("-m", "services.templates"),
            f"grpc {host}:{settings.templates_port} TemplateService",
            METRICS_PORTS["templates"],
        ),
        Component(
            "uploads",
            ("-m", "services.uploads"),
            f"grpc {host}:{settings.uploads_port} UploadService",
            METRICS_PORTS["uploads"],
        ),
        Component(
            "batch_status",
            ("-m", "services.batch_status"),
            f"grpc {host}:{settings.batches_port} BatchStatusService",
            METRICS_PORTS["batch_status"],
        ),
        # The signer and public connect as their own roles, which read no table.
        Component(
            "signer",
            ("-m", "services.signer"),
            f"http {host}:{settings.signer_port} (internal: signs wallet credentials)",
            METRICS_PORTS["signer"],
            env=(("CREDBATCH_SIGNER_DATABASE_URL", settings.signer_database_url),),
        ),
        Component(
            "public",
            ("-m", "services.public"),
            f"http {settings.public_url}",
            METRICS_PORTS["public"],
            env=(
                ("CREDBATCH_PUBLIC_DATABASE_URL", settings.public_database_url),
                *((("CREDBATCH_NONCE_KEY", settings.nonce_key),) if settings.nonce_key else ()),
            ),
        ),
        # Like public, the receiver connects as the public endpoints' role.
        *(
            [
                Component(
                    "bounces",
                    ("-m", "services.bounces"),
                    f"smtp {host}:{settings.bounce_port} (bounces for {settings.bounce_domain})",
                    METRICS_PORTS["bounces"],
                    env=(("CREDBATCH_PUBLIC_DATABASE_URL", settings.public_database_url),),
                )
            ]
            if settings.bounce_domain is not None
            else []
        ),
        Component(
            "webhooks",
            ("-m", "services.webhooks"),
            f"grpc {host}:{settings.webhooks_port} WebhookService",
            METRICS_PORTS["webhooks"],
        ),
        Component(
            "tenants",
            ("-m", "services.tenants"),
            f"grpc {host}:{settings.tenants_port} TenantService",
            METRICS_PORTS["tenants"],
        ),
        # The relay alone connects as the relay role (the outbox functions are granted to it).
        Component(
            "relay",
            ("-m", "workers.relay"),
            metrics_port=RELAY_METRICS_PORT,
            env=(("CREDBATCH_RELAY_DATABASE_URL", settings.relay_database_url),),
            health_port=RELAY_METRICS_PORT + HEALTH_PORT_OFFSET,
        ),
        # The dispatchers' claim runs as the webhooks role (the claim is granted to it alone).
        Component(
            "hooks-dispatch",
            ("-m", "workers.webhooks"),
            metrics_port=FIRST_DISPATCHER_METRICS_PORT,
            env=(("CREDBATCH_WEBHOOKS_DATABASE_URL", settings.webhooks_database_url),),
            health_port=FIRST_DISPATCHER_METRICS_PORT + HEALTH_PORT_OFFSET,
        ),
    ]
    # The workers' status refresher lists due status lists as its own role.
    found += [
        Component(
            f"worker-{i + 1}",
            ("-m", "workers.issuance"),
            metrics_port=FIRST_WORKER_METRICS_PORT + i,
            env=(("CREDBATCH_REFRESHER_DATABASE_URL", settings.refresher_database_url),),
            health_port=FIRST_WORKER_METRICS_PORT + i + HEALTH_PORT_OFFSET,
        )
        for i in range(workers)
    ]
    return found


def metrics_env(component: Component, env: dict[str, str]) -> dict[str, str]:
    """``env`` with the component's metrics and health ports; CREDBATCH_METRICS_PORT=0 turns
    all metrics off."""
    if component.health_port:
        env = {**env, "CREDBATCH_HEALTH_PORT": str(component.health_port)}
    if not component.metrics_port or env.get("CREDBATCH_METRICS_PORT") == "0":
        return env
    return {**env, "CREDBATCH_METRICS_PORT": str(component.metrics_port)}


def describe(component: Component, host: str, metrics_on: bool) -> str:
    """One line of the start-up listing."""
    text = component.listens or (
        f"grpc health {host}:{component.health_port}" if component.health_port else "(no listener)"
    )
    if metrics_on and component.metrics_port:
        text += f", metrics http://{host}:{component.metrics_port}/metrics"
    return text


async def _prefix(name: str, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        sys.stdout.write(f"{name:>14} | {line.decode(errors='replace')}")
        sys.stdout.flush()


async def prepare(settings: Settings) -> None:
    await ensure_database(settings.database_url)
    applied = await migrate(settings.database_url)
    print(
        f"database ready ({len(applied.migrations)} migration(s), {len(applied.functions)} "
        f"function file(s), {len(applied.triggers)} trigger file(s) applied now)"
    )
    connection = await connect(settings)
    try:
        channel = await connection.channel()
        await declare_topology(channel, settings)
    finally:
        await connection.close()
    print("broker topology declared")


def with_nonce_key(settings: Settings) -> Settings:
    """``settings`` with a c_nonce key: the given one, or one drawn for this run (one public
    process checks the nonces it made, and they live minutes, so nothing needs to keep it)."""
    if settings.nonce_key:
        return settings
    return settings.with_overrides(nonce_key=secrets.token_urlsafe(32))


def with_bounces(settings: Settings) -> Settings:
    """``settings`` with a bounce domain and key: the given ones, or the development domain
    and a key drawn for this run (a bounce of an earlier run's mail is then refused, as a
    forgery would be; nothing else needs to keep it)."""
    if settings.bounce_domain is not None:
        return settings
    return settings.with_overrides(
        bounce_domain=DEV_BOUNCE_DOMAIN, bounce_key=secrets.token_urlsafe(32)
    )


async def run(settings: Settings, workers: int) -> int:
    settings = with_bounces(with_nonce_key(settings))
    await prepare(settings)
    os.makedirs(MAIL_DIR, exist_ok=True)
    os.makedirs(SMS_DIR, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if settings.kek and "CREDBATCH_KEK" not in env:
        env["CREDBATCH_KEK"] = settings.kek
    # One webhook key for the service that seals and the dispatcher that opens.
    if settings.webhook_kek and "CREDBATCH_WEBHOOK_KEK" not in env:
        env["CREDBATCH_WEBHOOK_KEK"] = settings.webhook_kek
    # One bounce key for the workers that address and the receiver that checks.
    if settings.bounce_domain is not None and "CREDBATCH_BOUNCE_DOMAIN" not in env:
        env["CREDBATCH_BOUNCE_DOMAIN"] = settings.bounce_domain
        env["CREDBATCH_BOUNCE_KEY"] = settings.bounce_key or ""
    env.setdefault("CREDBATCH_DEV_BOUNCE_PATTERN", DEV_BOUNCE_PATTERN)
    children: dict[str, asyncio.subprocess.Process] = {}
    pipes: list[asyncio.Task[None]] = []
    for component in components(settings, workers):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *component.args,
            env=metrics_env(component, {**env, **dict(component.env)}),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        pipes.append(asyncio.create_task(_prefix(component.name, proc.stdout)))
        children[component.name] = proc
    print("\ncredbatch is running:")
    metrics_on = env.get("CREDBATCH_METRICS_PORT") != "0"
    for component in components(settings, workers):
        print(f"  {component.name:<14} {describe(component, settings.host, metrics_on)}")
    print("Ctrl-C stops everything.\n", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = {asyncio.create_task(proc.wait()): name for name, proc in children.items()}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in done:
        if task in waits:
            print(f"{waits[task]} exited with code {task.result()}; stopping everything")
            code = 1
    for proc in children.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    deadline = settings.grace_seconds + 5
    try:
        await asyncio.wait_for(
            asyncio.gather(*(p.wait() for p in children.values())), timeout=deadline
        )
    except TimeoutError:
        for name, proc in children.items():
            if proc.returncode is None:
                print(f"{name} did not stop within {deadline:.0f}s; killing it")
                proc.kill()
    await asyncio.gather(*pipes, return_exceptions=True)
    stopper.cancel()
    print("credbatch stopped")
    return code


def main() -> None:
    try:
        settings = load_settings()
        workers = int(os.environ.get("CREDBATCH_DEV_WORKERS", "2"))
    except (ConfigError, ValueError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        code = asyncio.run(run(settings, workers))
    except MigrationError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(code)


if __name__ == "__main__":
    main()
