"""Helpers for tests of the metrics endpoint: scrape it, and list a process's listening ports."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def scrape(port: int) -> list[Sample]:
    """Every sample ``/metrics`` serves now, parsed as Prometheus would."""
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    reply.raise_for_status()
    assert reply.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(reply.text) for s in family.samples]


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    """The samples named ``name`` whose labels include ``labels``."""
    return [s for s in samples if s.name == name and labels.items() <= dict(s.labels).items()]


async def wait_for_sample(
    port: int,
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    minimum: float = 1,
    timeout: float = 30,
) -> list[Sample]:
    """Scrape until a sample ``name`` with ``labels`` reaches ``minimum``; all samples then.

    A process still starting (nothing listening yet) counts as no sample so far.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples = await scrape(port)
        except httpx.ConnectError:
            samples = []
        if any(s.value >= minimum for s in find(samples, name, **(labels or {}))):
            return samples
        assert time.monotonic() < deadline, f"no {name}{labels} >= {minimum} in time"
        await asyncio.sleep(0.3)


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on (Linux: its socket inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM, wait, and the process's output (kill if it does not stop)."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output = process.stdout.read().decode() if process.stdout else ""
    if process.stdout:
        process.stdout.close()
    return output
