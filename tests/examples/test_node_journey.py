"""examples/node/journey.js, a grpc-js client built from protos/ alone, against the running
system: every component as its own process (tests.fixtures.cli_system), as `make run` starts
them. The script asserts each step itself; this test checks that it ran them all."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.fixtures.cli_system import System, running_system

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = ROOT / "examples" / "node" / "journey.js"
ROWS = 25
STEPS = (
    "schema",
    "sample csv",
    "validation report",
    "error details",
    "upload",
    "watch",
    "report",
    "list records",
    "tenant isolation",
    "bad name",
)


@pytest.fixture(scope="module", autouse=True)
def node_example_deps() -> None:
    """The example's pinned libraries, installed once (make skips an up-to-date install)."""
    assert shutil.which("node"), "the Node.js example needs Node.js (node) on PATH"
    subprocess.run(["make", "-s", "node-example-deps"], cwd=ROOT, check=True, timeout=300)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    # Watch streams last one second, so the journey's re-watch loop has work to do.
    async with running_system(
        tmp_path_factory.mktemp("node-journey"), {"CREDBATCH_WATCH_MAX_SECONDS": "1"}
    ) as running:
        yield running


async def test_the_node_client_runs_the_whole_journey(system: System) -> None:
    env = {
        **system.env,
        "CREDBATCH_TOKEN": system.token(tenant=uuid.uuid4(), sub="node-journey"),
        "CREDBATCH_OTHER_TOKEN": system.token(tenant=uuid.uuid4(), sub="someone-else"),
        "CREDBATCH_ROWS": str(ROWS),
    }
    process = await asyncio.create_subprocess_exec(
        "node",
        str(JOURNEY),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=240)
    output = stdout.decode()
    assert process.returncode == 0, f"{output}\n{stderr.decode()}\n{system.log_tail('worker')}"
    lines = output.strip().splitlines()
    done = [line.removeprefix("ok ").split(":", 1)[0] for line in lines[:-1]]
    assert tuple(done) == STEPS
    summary = json.loads(lines[-1])
    assert summary["ok"] is True and summary["batch"].startswith("batches/")
    assert summary["records"] == ROWS and summary["pages"] == 3
    assert summary["watch_reasons"][-1] == "WATCH_END_REASON_BATCH_ENDED"
    assert set(summary["watch_reasons"][:-1]) <= {"WATCH_END_REASON_STREAM_LIFETIME"}
    assert summary["error_reason"] and summary["violation_field"]
