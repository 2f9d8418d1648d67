"""A running credbatch for CLI tests: every component as its own process, as `make run` starts
them, pointed at this session's database and RabbitMQ vhost through CREDBATCH_* variables.

The CLI is then run as a subprocess (`python -m credbatch.cli.main …`) against it, so these
tests see exactly what a user sees: stdout, stderr and the exit code.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import database_name, ensure_database, migrate
from tests.fixtures.amqp import create_vhost, delete_vhost, vhost_url
from tests.fixtures.database import drop_database, with_database

STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _grpc_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class System:
    """The running processes, their ports, and how to run the CLI against them."""

    settings: Settings
    env: dict[str, str]
    ports: dict[str, int]
    mail_dir: Path
    sms_dir: Path
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def token(
        self,
        roles: Sequence[str] = ("org_admin",),
        tenant: uuid.UUID | None = None,
        sub: str = "cli-test",
        departments: Sequence[str] = (),
    ) -> str:
        return mint_dev_token(
            self.settings,
            tenant=tenant or uuid.uuid4(),
            sub=sub,
            roles=roles,
            departments=departments,
        )

    def cli(
        self,
        *args: str,
        token: str | None = None,
        extra_env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra_env or {})}
        env.pop("CREDBATCH_TOKEN", None)
        if token is not None:
            env["CREDBATCH_TOKEN"] = token
        env["COLUMNS"] = "200"  # wide tables: assertions read whole cells
        return subprocess.run(
            [sys.executable, "-m", "credbatch.cli.main", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [sys.executable, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def wait_ready(self, name: str, ready: bool) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
        if not ready:
            raise RuntimeError(
                f"{name} not ready in {STARTUP_SECONDS:.0f}s:\n{self.log_tail(name)}"
            )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace_seconds + 10
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_until(check: Callable[[], bool], timeout: float = STARTUP_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.2)
    return False


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    """Sinks, the three services, public, the relay and one worker, as subprocesses.

    On a database and a vhost of their own: a relay and a worker running beside other tests
    would publish those tests' outbox rows and consume their jobs. Stopped after tests/cli.
    """
    root = tmp_path_factory.mktemp("credbatch-system")
    base = load_settings()
    database_url = with_database(base.database_url, f"credbatch_cli_{secrets.token_hex(6)}")
    await ensure_database(database_url)
    await migrate(database_url)
    vhost = create_vhost()
    settings = base.with_overrides(
        database_url=database_url,
        app_database_url=with_database(base.app_database_url, database_name(database_url)),
        amqp_url=vhost_url(vhost),
        grace_seconds=2.0,
    )
    ports = {
        name: free_port() for name in ("templates", "uploads", "batches", "public", "smtp", "sms")
    }
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OTEL_SDK_DISABLED": "true",
        "CREDBATCH_MODE": "development",
        "CREDBATCH_HOST": "127.0.0.1",
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_AMQP_URL": settings.amqp_url,
        "CREDBATCH_TEMPLATES_PORT": str(ports["templates"]),
        "CREDBATCH_UPLOADS_PORT": str(ports["uploads"]),
        "CREDBATCH_BATCHES_PORT": str(ports["batches"]),
        "CREDBATCH_PUBLIC_PORT": str(ports["public"]),
        "CREDBATCH_PUBLIC_URL": f"http://127.0.0.1:{ports['public']}",
        "CREDBATCH_SMTP_HOST": "127.0.0.1",
        "CREDBATCH_SMTP_PORT": str(ports["smtp"]),
        "CREDBATCH_SMS_URL": f"http://127.0.0.1:{ports['sms']}",
        "CREDBATCH_JWT_SECRET": settings.jwt_secret or "",
        "CREDBATCH_KEK": settings.kek or "",
        "CREDBATCH_GRACE_SECONDS": "2",
        "CREDBATCH_RETRY_DELAYS": "0.2,0.5",
        "CREDBATCH_RELAY_POLL_INTERVAL": "0.1",
        "CREDBATCH_TEMPLATES_ADDR": f"127.0.0.1:{ports['templates']}",
        "CREDBATCH_UPLOADS_ADDR": f"127.0.0.1:{ports['uploads']}",
        "CREDBATCH_BATCHES_ADDR": f"127.0.0.1:{ports['batches']}",
    }
    system = System(
        settings=settings,
        env=env,
        ports=ports,
        mail_dir=root / "mail",
        sms_dir=root / "sms",
        logs=root / "logs",
    )
    system.logs.mkdir()
    try:
        system.start(
            "smtp-sink",
            "-m",
            "credbatch.devsinks.smtp",
            "--port",
            str(ports["smtp"]),
            "--dir",
            str(system.mail_dir),
        )
        system.start(
            "sms-sink",
            "-m",
            "credbatch.devsinks.sms",
            "--port",
            str(ports["sms"]),
            "--dir",
            str(system.sms_dir),
        )
        for name, module in (
            ("templates", "services.templates"),
            ("uploads", "services.uploads"),
            ("batches", "services.batch_status"),
            ("public", "services.public"),
            ("relay", "workers.relay"),
            ("worker", "workers.issuance"),
        ):
            system.start(name, "-m", module)
        for name in ("templates", "uploads", "batches"):
            port = ports[name]
            system.wait_ready(name, await _wait_until(functools.partial(_grpc_serving, port)))
        for name, port_name in (("public", "public"), ("smtp-sink", "smtp"), ("sms-sink", "sms")):
            port = ports[port_name]
            system.wait_ready(name, await _wait_until(functools.partial(_tcp_open, port)))
        yield system
    finally:
        await asyncio.to_thread(system.stop)
        delete_vhost(vhost)
        await drop_database(database_url)


SCHEMA_YAML = """\
display_name: Safety training {suffix}
description: Completion of the safety training
requires_certificate: true
attributes:
  - name: full_name
    type: string
    required: true
    description: Holder's name
  - name: level
    type: enum
    enum_values: [basic, advanced]
    required: true
  - name: completed_on
    type: date
    required: true
"""

EMAIL_YAML = """\
display_name: Invitation {suffix}
subject: "Your {{{{ level }}}} certificate"
html_body: "<p>Hello {{{{ full_name }}}}, claim it at {{{{ claim_url }}}}</p>"
text_body: "Hello {{{{ full_name }}}}, claim it at {{{{ claim_url }}}}"
"""

CERTIFICATE_JSON = """\
{{"display_name": "Certificate {suffix}", "title": "Certificate of completion",
 "body": "{{{{ full_name }}}} completed the {{{{ level }}}} training on {{{{ completed_on }}}}.",
 "layout": {{"page_size": "a4", "orientation": "landscape", "primary_color": "#123456"}}}}
"""


@dataclass(frozen=True)
class Org:
    """A tenant with an org_admin token, a schema requiring a certificate and its templates."""

    tenant: uuid.UUID
    token: str
    schema: str
    email_template: str
    certificate_template: str


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].strip()


@pytest.fixture(scope="package")
def org(system: System, tmp_path_factory: pytest.TempPathFactory) -> Org:
    files = tmp_path_factory.mktemp("org")
    suffix = uuid.uuid4().hex[:6]
    tenant = uuid.uuid4()
    token = system.token(tenant=tenant)
    (files / "schema.yaml").write_text(SCHEMA_YAML.format(suffix=suffix))
    (files / "email.yaml").write_text(EMAIL_YAML.format(suffix=suffix))
    (files / "certificate.json").write_text(CERTIFICATE_JSON.format(suffix=suffix))
    schema = last_line(system.cli("schemas", "create", str(files / "schema.yaml"), token=token))
    email = last_line(
        system.cli(
            "templates",
            "create",
            "email",
            str(files / "email.yaml"),
            "--schema",
            schema,
            token=token,
        )
    )
    certificate = last_line(
        system.cli(
            "templates",
            "create",
            "certificate",
            str(files / "certificate.json"),
            "--schema",
            schema,
            token=token,
        )
    )
    return Org(tenant, token, schema, email, certificate)


def batch_csv(rows: int, tag: str = "") -> str:
    """A valid CSV for the org's schema with EMAIL as the medium."""
    tag = tag or uuid.uuid4().hex[:6]
    lines = ["email,full_name,level,completed_on"]
    for i in range(rows):
        level = "basic" if i % 2 else "advanced"
        lines.append(f"holder{i}.{tag}@example.org,Holder {i},{level},2026-11-2{i % 9}")
    return "\n".join(lines) + "\n"
