"""RenderPool: a service process's render processes, and how a runaway is stopped.

A request (one tenant's jobs, e.g. every message of an issuance group) goes to one idle render
process, which answers its jobs in order, in bursts (wire.FLUSH_SECONDS). Each job has a
deadline, its templates' time budgets plus ``grace`` seconds: a process that leaves the next
answer due past it is killed (SIGKILL) and replaced. When that leaves one job unanswered, that
job fails with TEMPLATE_TIMEOUT; when several (a burst lost with the process), they are run
again one per request, so only the one that runs away again fails. The event loop only ever
awaits a socket, so no render, however long, holds it.

Fairness: one tenant holds at most all but one of the processes at a time (one when there
are two or fewer), so a tenant whose renders run away leaves a process to the others. A
template whose render was killed is set aside for that tenant for ``QUARANTINE_SECONDS``:
its other jobs then fail at once (TEMPLATE_TIMEOUT) instead of each costing a process and a
deadline, so a batch of such rows cannot keep the pool busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from credbatch.config import Settings
from credbatch.errors import Unavailable
from credbatch.templating.problems import (
    TEMPLATE_RENDER_ERROR,
    TEMPLATE_TIMEOUT,
    TemplateProblem,
)
from credbatch.templating.runner.jobs import (
    CertificateJob,
    Job,
    Result,
    key_of,
    seconds_of,
    source_of,
    templates_of,
)
from credbatch.templating.runner.wire import (
    CACHE_SIZE,
    COMPILE_SECONDS,
    FLUSH_SECONDS,
    ProtocolError,
    Request,
    WireJob,
    decode_result,
    encode_request,
    expect,
    read_frame,
)

log = logging.getLogger(__name__)

CHILD_COMMAND = (sys.executable, "-m", "credbatch.templating.runner.child")
QUARANTINE_SECONDS = 60.0
START_SECONDS = 60.0
"""A render process's start (imports, warm-up) on a loaded machine; a second when idle."""
_RESPAWN_PAUSE = 1.0
_ENDED = (asyncio.IncompleteReadError, ConnectionError, ProtocolError)


class RenderUnavailable(Unavailable):
    """No render process can take the jobs: the pool is closed, or its processes keep ending
    before they answer (a fault of the service, not of the templates: UNAVAILABLE to a caller,
    a transient failure to a worker)."""

    reason = "RENDER_UNAVAILABLE"


@dataclass(frozen=True)
class _Outcome:
    """What a request achieved: the answers received in order, and when its process had to
    be stopped before answering every job, the problem of the job it was on."""

    done: list[Result]
    stopped: TemplateProblem | None
    healthy: bool


@dataclass(eq=False)
class _Process:
    popen: subprocess.Popen[bytes]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    # The templates it has compiled, in its own least-recently-used order.
    known: OrderedDict[str, None] = field(default_factory=OrderedDict)


class RenderPool:
    """Render processes with CPU, memory and descriptor limits, killed and replaced when a
    render outlives its deadline. ``start()`` before use, ``close()`` at the end."""

    def __init__(
        self,
        processes: int = 2,
        grace: float = 1.0,
        memory_bytes: int = 512 * 1024 * 1024,
        *,
        command: Sequence[str] | None = None,
    ) -> None:
        """``command`` starts a render process (default CHILD_COMMAND) with two more
        arguments: its socket's descriptor and its address-space limit in bytes."""
        self._size = max(1, processes)
        self._per_tenant = max(1, self._size - 1)
        self._grace = grace
        self._memory_bytes = memory_bytes
        self._command = tuple(command or CHILD_COMMAND)
        self._idle: list[_Process] = []
        self._alive: set[_Process] = set()
        self._held: Counter[str] = Counter()
        self._waiting: deque[tuple[str, asyncio.Future[_Process]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._quarantine: dict[tuple[str, str], float] = {}
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderPool:
        return cls(
            settings.render_processes,
            settings.render_grace_seconds,
            settings.render_memory_mb * 1024 * 1024,
        )

    async def start(self) -> None:
        """Start every process (a second or so each) and wait until all are ready."""
        for process in await asyncio.gather(*(self._spawn() for _ in range(self._size))):
            self._add(process)

    async def render(self, tenant: str, jobs: Sequence[Job]) -> list[Result]:
        """Render tenant's jobs; each result is the job's output or its TemplateProblem."""
        results: list[Result | None] = [None] * len(jobs)
        pending = list(range(len(jobs)))
        alone = 0  # the next pending jobs run one per request: suspects of a stopped process
        lost = 0
        while pending:
            pending = self._set_aside(tenant, jobs, pending, results)
            if not pending:
                break
            process = await self._acquire(tenant)
            # A template may have been set aside while this waited for a process.
            pending = self._set_aside(tenant, jobs, pending, results)
            if not pending:
                self._release(tenant, process)
                break
            batch = pending[:1] if alone else pending
            outcome = _Outcome([], None, healthy=False)
            try:
                outcome = await self._run(process, [jobs[i] for i in batch])
            finally:
                if not outcome.healthy:
                    self._discard(process)
                self._release(tenant, process if outcome.healthy else None)
            for index, result in zip(batch, outcome.done, strict=False):
                results[index] = result
            pending = pending[len(outcome.done) :]
            alone = max(0, alone - len(outcome.done))
            suspects = batch[len(outcome.done) :]
            if outcome.stopped is not None and len(suspects) == 1:
                # Alone in its request, or the only one unanswered: this job ran away.
                [culprit] = suspects
                results[culprit] = outcome.stopped
                keys = [key_of(t) for t in templates_of(jobs[culprit])]
                self._set_keys_aside(tenant, keys)
                log.warning(
                    "tenant %s: template %s set aside for %.0f s (%s)",
                    tenant,
                    ",".join(key[:12] for key in keys),
                    QUARANTINE_SECONDS,
                    outcome.stopped.code,
                )
                pending.remove(culprit)
                alone = max(0, alone - 1)
            elif outcome.stopped is not None:
                # One of these ran away, the others' answers were lost with the process.
                alone = len(suspects)
            elif not outcome.done and suspects:
                lost += 1
                if lost > 2:  # not the jobs' doing: a service error, transient
                    raise RenderUnavailable("render processes keep ending before answering")
        return cast(list[Result], results)

    async def close(self) -> None:
        """Stop every process (each exits when its socket closes) and fail waiting renders."""
        self._closed = True
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(RenderUnavailable("the render pool is closed"))
        self._waiting.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        processes = list(self._alive)
        self._alive.clear()
        self._idle.clear()
        for process in processes:
            process.writer.close()  # an idle process exits at once; a busy one is killed
        await asyncio.gather(*(_reap(process.popen, 2.0) for process in processes))

    # --- one request on one process ----------------------------------------------------

    async def _run(self, process: _Process, jobs: Sequence[Job]) -> _Outcome:
        """Send jobs to process and collect the answers, as long as they come in time."""
        request, new_keys = self._request(process, jobs)
        try:
            process.writer.write(encode_request(request))
            await process.writer.drain()
            if new_keys:
                async with asyncio.timeout(COMPILE_SECONDS):
                    header, _ = await read_frame(process.reader)
                expect(header, "compiled")
        except (TimeoutError, *_ENDED) as error:
            if not new_keys:  # it had ended before this request: the jobs go elsewhere
                return _Outcome([], None, healthy=False)
            return _Outcome([], await self._stopped(process, error, "compiling"), healthy=False)
        # Answers come in bursts (wire.FLUSH_SECONDS): the next one is due within the
        # budget of the slowest job left, plus the grace and the burst's delay.
        due = [seconds_of(job) for job in jobs]
        for index in range(len(due) - 2, -1, -1):
            due[index] = max(due[index], due[index + 1])
        done: list[Result] = []
        for index in range(len(jobs)):
            try:
                async with asyncio.timeout(due[index] + self._grace + FLUSH_SECONDS):
                    header, payload = await read_frame(process.reader)
                done.append(decode_result(header, payload))
            except (TimeoutError, *_ENDED) as error:
                return _Outcome(done, await self._stopped(process, error, "rendering"), False)
        return _Outcome(done, None, healthy=True)

    def _request(self, process: _Process, jobs: Sequence[Job]) -> tuple[Request, list[str]]:
        """The request for jobs, sending only the templates the process lacks; updates the
        account of what it has compiled by the rule it follows itself (runner.child)."""
        templates = {key_of(t): t for job in jobs for t in templates_of(job)}
        keys = list(templates)
        new_keys = [key for key in keys if key not in process.known]
        for key in new_keys:
            process.known[key] = None
        for key in keys:
            process.known.move_to_end(key)
        while len(process.known) > CACHE_SIZE:
            process.known.popitem(last=False)
        wire_jobs = [
            WireJob(
                tuple(key_of(t) for t in templates_of(job)),
                job.values,
                job.cred_url if isinstance(job, CertificateJob) else None,
                seconds_of(job) + self._grace,
            )
            for job in jobs
        ]
        sources = [(key, source_of(templates[key])) for key in new_keys]
        return Request(sources, keys, wire_jobs), new_keys

    async def _stopped(
        self, process: _Process, error: BaseException, doing: str
    ) -> TemplateProblem:
        """Kill the process (if it still runs) and say what became of its job."""
        timed_out = isinstance(error, TimeoutError)
        if isinstance(error, asyncio.IncompleteReadError | ConnectionError):
            code = await _reap(process.popen, 2.0)  # it ended by itself (or by its CPU limit)
        else:
            process.popen.kill()
            code = await _reap(process.popen, 5.0)
        log.warning(
            "render process %d stopped while %s (%s, exit %s)",
            process.popen.pid,
            doing,
            type(error).__name__,
            code,
        )
        if timed_out or code == -signal.SIGXCPU:
            return TemplateProblem(
                TEMPLATE_TIMEOUT, f"the template was stopped while {doing}: it ran past its budget"
            )
        return TemplateProblem(
            TEMPLATE_RENDER_ERROR, f"the template's render process ended while {doing}"
        )

    # --- templates set aside --------------------------------------------------------------

    def _set_keys_aside(self, tenant: str, keys: Sequence[str]) -> None:
        until = time.monotonic() + QUARANTINE_SECONDS
        for key in keys:
            self._quarantine[(tenant, key)] = until

    def _set_aside(
        self, tenant: str, jobs: Sequence[Job], pending: list[int], results: list[Result | None]
    ) -> list[int]:
        """Fail at once the pending jobs whose template ran away lately; the others remain."""
        if not self._quarantine:
            return pending
        now = time.monotonic()
        for entry in [e for e, until in self._quarantine.items() if until <= now]:
            del self._quarantine[entry]
        remaining = []
        for index in pending:
            if any((tenant, key_of(t)) in self._quarantine for t in templates_of(jobs[index])):
                results[index] = TemplateProblem(
                    TEMPLATE_TIMEOUT,
                    "not rendered: this template ran past its budget on another record within "
                    f"the last {QUARANTINE_SECONDS:.0f} s",
                )
            else:
                remaining.append(index)
        return remaining

    # --- processes ------------------------------------------------------------------------

    async def _acquire(self, tenant: str) -> _Process:
        if self._closed:
            raise RenderUnavailable("the render pool is closed")
        if not self._waiting and self._idle and self._held[tenant] < self._per_tenant:
            self._held[tenant] += 1
            return self._idle.pop()
        future: asyncio.Future[_Process] = asyncio.get_running_loop().create_future()
        entry = (tenant, future)
        self._waiting.append(entry)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(tenant, future.result())
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(entry)
            raise

    def _release(self, tenant: str, process: _Process | None) -> None:
        self._held[tenant] -= 1
        if self._held[tenant] <= 0:
            del self._held[tenant]
        if process is not None and process in self._alive:
            self._idle.append(process)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand idle processes to the first waiting renders whose tenant may take one."""
        for entry in list(self._waiting):
            if not self._idle:
                return
            tenant, future = entry
            if future.done():
                self._waiting.remove(entry)
            elif self._held[tenant] < self._per_tenant:
                self._waiting.remove(entry)
                self._held[tenant] += 1
                future.set_result(self._idle.pop())

    def _add(self, process: _Process) -> None:
        if self._closed:
            process.writer.close()
            self._track(_reap(process.popen, 5.0))
            return
        self._alive.add(process)
        self._idle.append(process)
        self._dispatch()

    def _discard(self, process: _Process) -> None:
        """Stop using process (killed, ended or mid-request) and start its replacement."""
        if process not in self._alive:
            return
        self._alive.discard(process)
        if process.popen.poll() is None:
            process.popen.kill()
        process.writer.close()
        self._track(_reap(process.popen, 5.0))
        if not self._closed:
            self._track(self._replace())

    async def _replace(self) -> None:
        while not self._closed:
            try:
                process = await self._spawn()
            except (OSError, TimeoutError, *_ENDED) as error:
                log.error("could not start a render process: %s", type(error).__name__)
                await asyncio.sleep(_RESPAWN_PAUSE)
            else:
                self._add(process)
                return

    def _track(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(_quietly(coroutine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self) -> _Process:
        ours, theirs = socket.socketpair()
        try:
            popen = _start(self._command, theirs, self._memory_bytes)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        try:
            header, _ = await asyncio.wait_for(read_frame(reader), START_SECONDS)
            expect(header, "ready")
        except BaseException:
            popen.kill()
            writer.close()
            await _reap(popen, 5.0)
            raise
        return _Process(popen, reader, writer)


def _start(
    command: Sequence[str], sock: socket.socket, memory_bytes: int
) -> subprocess.Popen[bytes]:
    # Called on the loop, not in a thread: Python starts it with vfork (a millisecond), and
    # a cancelled wait for a thread could leave a started process that nobody waits for.
    return subprocess.Popen(  # noqa: S603 - our interpreter, our module, numbers
        [*command, str(sock.fileno()), str(memory_bytes)],
        pass_fds=(sock.fileno(),),
        env=child_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )


def child_environment() -> dict[str, str]:
    """A render process's whole environment: where its code is, nothing else (no secret)."""
    return {
        "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUTF8": "1",
    }


async def _reap(popen: subprocess.Popen[bytes], seconds: float) -> int | None:
    """Wait for the process to end (killing it after seconds); its exit status."""
    try:
        return await asyncio.to_thread(popen.wait, seconds)
    except subprocess.TimeoutExpired:
        popen.kill()
        return await asyncio.to_thread(popen.wait)


async def _quietly(coroutine: Coroutine[Any, Any, object]) -> None:
    with contextlib.suppress(Exception):
        await coroutine
