"""RenderPool: renders in processes of their own, and a runaway stopped by force.

The runaways come from a render process whose sandbox lost two prices (holey_child): the
sandbox cannot stop them, only the pool can. Bounds are generous (the bomb itself runs for
minutes), never a speed figure.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from credbatch.templating.certificate import CompiledCertificate
from credbatch.templating.pricing import FILTER_PRICES, METHOD_PRICES, TEST_PRICES
from credbatch.templating.runner import CertificateJob, RenderPool, RenderUnavailable, TextJob
from credbatch.templating.runner.pool import child_environment
from credbatch.templating.sandbox import CompiledTemplate, TemplateProblem

pytestmark = pytest.mark.integration  # starts processes

GRACE = 0.5
HOLEY = (sys.executable, "-m", "tests.templating.runner.holey_child")
# round(5, -10 ** 8) computes 10 ** (10 ** 8): minutes of CPU in one C call.
ROUND_BOMB = CompiledTemplate("{{ 5 | round(0 - (level|int)) }}")
BOMB_ROW = {"level": "100000000"}
# Far below the bomb's minutes; far above its deadline (budget 0.25 s + GRACE).
STOPPED_WITHIN = 30.0
GREETING = CompiledTemplate("Hello {{ name }}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool() -> AsyncIterator[RenderPool]:
    started = RenderPool(2, GRACE)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


@pytest_asyncio.fixture(loop_scope="session")
async def holey() -> AsyncIterator[RenderPool]:
    started = RenderPool(2, GRACE, 256 * 1024 * 1024, command=HOLEY)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


def _pids(pool: RenderPool) -> set[int]:
    return {process.popen.pid for process in pool._alive}


async def test_jobs_render_in_order_each_with_its_result(pool: RenderPool) -> None:
    html = CompiledTemplate("<p>{{ name }}</p>", html=True)
    certificate = CompiledCertificate("Certificate", "{{ name }} passed.")
    results = await pool.render(
        "tenant-a",
        [
            TextJob((GREETING, html), {"name": "<Ann>"}),
            TextJob((GREETING,), {}),
            CertificateJob(certificate, {"name": "Bo"}, "https://issuer.example/c/1"),
        ],
    )
    assert results[0] == ("Hello <Ann>", "<p>&lt;Ann&gt;</p>")
    assert isinstance(results[1], TemplateProblem)
    assert results[1].code == "TEMPLATE_UNDEFINED_PLACEHOLDER"
    assert isinstance(results[2], bytes) and results[2].startswith(b"%PDF")


async def test_the_sandbox_refuses_the_issue_21_bomb_in_the_render_process(
    pool: RenderPool,
) -> None:
    [result] = await pool.render("tenant-a", [TextJob((ROUND_BOMB,), BOMB_ROW)])
    assert isinstance(result, TemplateProblem)
    assert result.code == "TEMPLATE_UNSAFE"


async def test_every_allowed_name_works_in_a_limited_render_process(pool: RenderPool) -> None:
    # A module a name loads on first use could not be opened after the process's limits.
    sources = [f"{{{{ a | {name} }}}}" for name in FILTER_PRICES]
    # `is ==` and `is in` are not valid syntax: their aliases (`is eq`) are there.
    sources += [f"{{{{ a is {name} }}}}" for name in TEST_PRICES if name.isalpha() and name != "in"]
    sources += [f"{{{{ a.{name}() }}}}" for name in METHOD_PRICES]
    sources += ["{% for i in range(2) %}{{ loop.cycle(1, 2) }}{{ loop.changed(i) }}{% endfor %}"]
    cases = [(source, html) for source in sources for html in (False, True)]
    row = {"a": "<b>Ann</b> &amp; 1"}
    jobs = [TextJob((CompiledTemplate(source, html=html),), row) for source, html in cases]
    results = await pool.render("tenant-a", jobs)
    for (source, _), result in zip(cases, results, strict=True):
        if isinstance(result, TemplateProblem):  # misuse the sandbox names (`a | round`), no more
            assert not any(
                kind in result.message
                for kind in ("OSError", "ImportError", "ModuleNotFoundError", "MemoryError")
            ), (source, result.message)


async def test_a_render_process_holds_no_secret(pool: RenderPool) -> None:
    assert set(child_environment()) == {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUTF8"}
    for pid in _pids(pool):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not [entry for entry in environ if entry.startswith(b"CREDBATCH_")]


async def test_a_runaway_is_killed_at_its_deadline_and_its_process_replaced(
    holey: RenderPool,
) -> None:
    before = _pids(holey)
    started = time.monotonic()
    [result] = await holey.render("tenant-a", [TextJob((ROUND_BOMB,), BOMB_ROW)])
    assert time.monotonic() - started < STOPPED_WITHIN
    assert isinstance(result, TemplateProblem)
    assert result.code == "TEMPLATE_TIMEOUT"
    [after] = await holey.render("tenant-a", [TextJob((GREETING,), {"name": "Ann"})])
    assert after == ("Hello Ann",)
    deadline = time.monotonic() + 60
    while len(_pids(holey)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(_pids(holey) - before) == 1  # the killed one's replacement


async def test_only_the_runaway_of_a_request_fails_and_its_template_is_set_aside(
    holey: RenderPool,
) -> None:
    fine = TextJob((GREETING,), {"name": "Ann"})
    bomb = TextJob((ROUND_BOMB,), BOMB_ROW)
    results = await holey.render("tenant-a", [fine, fine, bomb, fine, bomb, fine])
    assert [r.code if isinstance(r, TemplateProblem) else r for r in results] == [
        ("Hello Ann",),
        ("Hello Ann",),
        "TEMPLATE_TIMEOUT",
        ("Hello Ann",),
        "TEMPLATE_TIMEOUT",
        ("Hello Ann",),
    ]
    # The second bomb was not run: the template was set aside for the tenant after the first.
    assert isinstance(results[4], TemplateProblem)
    assert results[4].message.startswith("not rendered")
    # Set aside for that tenant only.
    started = time.monotonic()
    [other] = await holey.render("tenant-b", [TextJob((ROUND_BOMB,), {"level": "0"})])
    assert other == ("5",)
    assert time.monotonic() - started < STOPPED_WITHIN


async def test_another_tenant_is_served_while_a_runaway_holds_a_process(
    holey: RenderPool,
) -> None:
    bombed = asyncio.create_task(holey.render("tenant-a", [TextJob((ROUND_BOMB,), BOMB_ROW)]))
    served = 0
    while not bombed.done() and served < 50:
        result = await holey.render("tenant-b", [TextJob((GREETING,), {"name": str(served)})])
        assert result == [(f"Hello {served}",)]
        served += 1
    [bomb] = await bombed
    assert isinstance(bomb, TemplateProblem) and bomb.code == "TEMPLATE_TIMEOUT"
    # Tenant B's renders went on while tenant A's runaway held the other process.
    assert served >= 5


async def test_a_render_that_takes_more_memory_than_its_process_may_fails(
    holey: RenderPool,
) -> None:
    # The repetition is not priced in this process: only its memory limit refuses it.
    repeat = CompiledTemplate("{{ ('x' * (n|int)) | length }}")
    [result] = await holey.render("tenant-a", [TextJob((repeat,), {"n": str(10**9)})])
    assert isinstance(result, TemplateProblem)
    assert (result.code, result.message) == (
        "TEMPLATE_OUTPUT_TOO_LARGE",
        "the template is too large",
    )


async def test_renders_waiting_for_a_process_fail_when_the_pool_closes() -> None:
    closing = RenderPool(1, GRACE, command=HOLEY)
    await closing.start()
    bomb = asyncio.create_task(closing.render("tenant-a", [TextJob((ROUND_BOMB,), BOMB_ROW)]))
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(closing.render("tenant-b", [TextJob((GREETING,), {})]))
    await asyncio.sleep(0.1)
    await closing.close()
    with pytest.raises(RenderUnavailable):
        await waiting
    await asyncio.gather(bomb, return_exceptions=True)


def test_a_render_process_can_open_nothing_and_allocate_little() -> None:
    """The limits a render process puts on itself, in a process of their own."""
    code = (
        "import errno\n"
        "from credbatch.templating.runner.child import limit\n"
        "limit(256 * 1024 * 1024)\n"
        "try:\n"
        "    open('/etc/hostname')\n"
        "except OSError as error:\n"
        "    assert error.errno == errno.EMFILE, error\n"
        "else:\n"
        "    raise AssertionError('a file opened')\n"
        "try:\n"
        "    bytearray(512 * 1024 * 1024)\n"
        "except MemoryError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('512 MiB allocated')\n"
    )
    env = {**child_environment(), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
