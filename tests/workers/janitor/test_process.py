"""The janitor process: health on CREDBATCH_HEALTH_PORT while it can reach PostgreSQL, and a
clean stop on SIGTERM."""

from __future__ import annotations

import subprocess

import pytest

from credbatch.config import Settings
from tests.fixtures.processes import process_env
from tests.workers.test_process_health import module_spawner, process_health


@pytest.mark.integration
async def test_the_janitor_serves_health_and_stops_on_sigterm(db_settings: Settings) -> None:
    env = process_env(db_settings, CREDBATCH_JANITOR_INTERVAL="3600")
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn(with_port: dict[str, str]) -> subprocess.Popen[bytes]:
        process = module_spawner("workers.janitor")(with_port)
        spawned.append(process)
        return process

    async with process_health(spawn, env, "janitor"):
        pass
    (janitor,) = spawned
    # stop_process sent SIGTERM: the janitor ends its step and exits cleanly.
    assert janitor.returncode == 0
