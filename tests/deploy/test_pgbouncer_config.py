"""The pgbouncer.ini the manifests ship runs: Debian's PgBouncer loads it (pointed at the test
server), checks a role's password against the userlist and pools its transactions."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from credbatch.config import Settings
from tests.fixtures.manifests import by_name, render
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.integration  # PgBouncer and PostgreSQL

# The placeholder userlist's password, for a throwaway PgBouncer.
PASSWORD = "change-me"


def shipped_ini() -> str:
    ini: str = by_name(render("prod"), "ConfigMap", "credbatch-pgbouncer")["data"]["pgbouncer.ini"]
    return ini


def _for_the_test_server(ini: str, port: int, server: str, auth_file: Path) -> str:
    """The shipped configuration with the addresses and paths of this machine; Debian's 1.18
    does not know max_prepared_statements (1.21), the one line dropped."""
    host, server_port = server.split(":")
    lines = []
    for line in ini.splitlines():
        key = line.split("=")[0].strip()
        if key == "max_prepared_statements":
            continue
        if key == "*":
            line = f"* = host={host} port={server_port}"
        elif key == "listen_addr":
            line = "listen_addr = 127.0.0.1"
        elif key == "listen_port":
            line = f"listen_port = {port}"
        elif key == "auth_file":
            line = f"auth_file = {auth_file}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@contextmanager
def shipped_pgbouncer(server: str, role: str) -> Iterator[int]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        pytest.fail("pgbouncer is not installed: make pgbouncer (Debian's package)")
    with tempfile.TemporaryDirectory(prefix="credbatch-pgbouncer-ini-") as directory:
        home = Path(directory)
        home.chmod(0o755)
        auth_file = home / "userlist.txt"
        auth_file.write_text(f'"{role}" "{PASSWORD}"\n')
        port = free_port()
        ini = home / "pgbouncer.ini"
        ini.write_text(_for_the_test_server(shipped_ini(), port, server, auth_file))
        command = [binary, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(ini)]
        log = home / "pgbouncer.log"
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)
            assert "FATAL" not in log.read_text(), log.read_text()


async def _connect(url: str) -> asyncpg.Connection:
    for _ in range(50):
        try:
            return await asyncpg.connect(url, password=PASSWORD, statement_cache_size=0)
        except (OSError, asyncpg.CannotConnectNowError):
            await asyncio.sleep(0.1)
    raise AssertionError(f"PgBouncer did not accept a connection at {url}")


async def test_the_shipped_configuration_pools_transactions(db_settings: Settings) -> None:
    owner = urlsplit(db_settings.database_url)
    app = urlsplit(db_settings.app_database_url)
    role = app.username or "credbatch_app"
    with shipped_pgbouncer(f"{owner.hostname}:{owner.port or 5432}", role) as port:
        url = f"postgresql://{role}@127.0.0.1:{port}{owner.path}"
        first = await _connect(url)
        second = await _connect(url)
        try:
            assert await first.fetchval("SELECT current_user") == role
            await first.execute("SELECT set_config('app.shared', 'yes', false)")
            # Transaction pooling: the other client's next transaction gets that connection.
            assert await second.fetchval("SELECT current_setting('app.shared', true)") == "yes"
        finally:
            await first.close()
            await second.close()
        # PgBouncer checks the password itself (PostgreSQL here trusts every local login).
        with pytest.raises(asyncpg.ProtocolViolationError, match="SASL authentication failed"):
            await asyncpg.connect(url, password="wrong", statement_cache_size=0)
