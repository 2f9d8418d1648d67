"""CpuAllowance: the kernel ends a render process that outruns the CPU it was allowed, and a
process allowed more before each job runs on past any one job's limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from credbatch.templating.runner.pool import child_environment

pytestmark = pytest.mark.integration  # starts processes

_SPIN = (
    "import time\n"
    "from credbatch.templating.runner.child import CpuAllowance\n"
    "cpu = CpuAllowance()\n"
    "cpu.allow(0.5)\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < {seconds}:\n"
    "{body}"
)


def _run(seconds: float, body: str) -> subprocess.CompletedProcess[bytes]:
    env = {**child_environment(), "PATH": os.environ.get("PATH", "")}
    code = _SPIN.format(seconds=seconds, body=body)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)


def test_a_process_that_outruns_its_allowance_is_ended_by_the_kernel() -> None:
    result = _run(20.0, "    pass\n")
    assert result.returncode == -signal.SIGXCPU, result.stderr.decode()


def test_a_process_allowed_more_before_each_job_runs_past_the_first_limit() -> None:
    # The first limit is at most 3 s of CPU; jobs of a millisecond each, each allowed 0.5 s.
    body = (
        "    cpu.allow(0.5)\n"
        "    spun = time.process_time()\n"
        "    while time.process_time() - spun < 0.001:\n"
        "        pass\n"
    )
    result = _run(4.0, body)
    assert result.returncode == 0, result.stderr.decode()
