"""A render process: `python -m credbatch.templating.runner.child FD MEMORY_BYTES`.

Started by a RenderPool with a bare environment (no CREDBATCH_* variable, so no secret) and
one socket (FD). It loads and exercises everything a render touches, then limits itself:

- address space to MEMORY_BYTES (a render that allocates more gets MemoryError, a template
  problem, or the process dies and its pool replaces it);
- no new file descriptor (no file, socket or pipe can be opened: a broken sandbox could not
  reach the network or the disk), no child process, no core file, and the first place in
  line for the kernel's out-of-memory killer;
- CPU time, before each job, to what it has used so far plus the job's budget and grace,
  rounded up to whole seconds: past it the kernel ends the process (SIGXCPU), even if its
  service process could not.

Then it serves requests one at a time, each answered job by job in bursts
(credbatch.templating.runner.wire), and exits when its service process closes the socket.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import resource
import signal
import socket
import sys
import time
from collections import OrderedDict

from PIL import Image

from credbatch.templating.certificate import CertificateLayout, CompiledCertificate
from credbatch.templating.problems import TemplateProblem
from credbatch.templating.runner.jobs import compile_source, run
from credbatch.templating.runner.wire import (
    CACHE_SIZE,
    COMPILE_SECONDS,
    FLUSH_SECONDS,
    Request,
    flag_frame,
    read_request,
    result_frame,
)
from credbatch.templating.sandbox import CompiledTemplate

Compiled = CompiledTemplate | CompiledCertificate | TemplateProblem


def warm_up() -> None:
    """Import and run once everything a render may use: after limit() nothing can be opened."""
    logo = io.BytesIO()
    Image.new("RGBA", (8, 8), "#1F3A93").save(logo, "PNG")
    for layout in (CertificateLayout(logo=logo.getvalue(), logo_mime_type="image/png"), None):
        CompiledCertificate("{{ a | title }}", "{{ a }}", layout).render({"a": "x"}, "https://x/c")
    # Modules loaded on first use: Jinja's traceback rewriting when a render fails, the HTML
    # entities `striptags` unescapes (tests/templating/runner: every allowed name, limited).
    for source in ("{{ a | striptags | urlencode }}", "{{ a.upper() is lower }}", "{{ b }}"):
        with contextlib.suppress(TemplateProblem):
            CompiledTemplate(source, html=True).render({"a": "<b>x</b> &amp;"})


def _limit(which: int, value: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))


def limit(memory_bytes: int) -> None:
    # If its container runs out of memory, the kernel ends a render process first.
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adjust:
        adjust.write("1000")
    if memory_bytes > 0:
        _limit(resource.RLIMIT_AS, memory_bytes)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NPROC, 0)
    # New descriptors take the lowest free number: below it, everything is open already.
    lowest_free = os.dup(0)
    os.close(lowest_free)
    _limit(resource.RLIMIT_NOFILE, lowest_free)


class CpuAllowance:
    """The process's CPU limit, raised before each job to what it has used so far plus the job's
    seconds, rounded up to whole seconds, and one more.

    Setting RLIMIT_CPU costs about 10 µs, as much as a short render; jobs a few milliseconds
    apart mostly land on the same whole second, so the limit is set only when it changes.
    """

    def __init__(self) -> None:
        self._limit = -1

    def allow(self, seconds: float) -> None:
        limit = math.ceil(time.process_time() + seconds) + 1
        if limit != self._limit:
            _limit(resource.RLIMIT_CPU, limit)
            self._limit = limit


def serve(sock: socket.socket) -> None:
    cache: OrderedDict[str, Compiled] = OrderedDict()
    cpu = CpuAllowance()
    while (request := read_request(sock)) is not None:
        if request.sources:
            _compile(request, cache, cpu)
            sock.sendall(flag_frame("compiled"))
        else:
            _use(request, cache)
        # Answers go out in bursts, at most FLUSH_SECONDS apart: one wake-up of the service
        # process for many quick jobs instead of one each (half its cost per record).
        burst: list[bytes] = []
        sent = time.monotonic()
        for job in request.jobs:
            cpu.allow(job.seconds)
            templates = tuple(cache[key] for key in job.keys)
            burst.append(result_frame(run(templates, job.values, job.cred_url)))
            if time.monotonic() - sent >= FLUSH_SECONDS:
                sock.sendall(b"".join(burst))
                burst.clear()
                sent = time.monotonic()
        if burst:
            sock.sendall(b"".join(burst))


def _compile(request: Request, cache: OrderedDict[str, Compiled], cpu: CpuAllowance) -> None:
    cpu.allow(COMPILE_SECONDS)
    for key, source in request.sources:
        try:
            cache[key] = compile_source(source)
        except TemplateProblem as problem:
            cache[key] = problem
    _use(request, cache)


def _use(request: Request, cache: OrderedDict[str, Compiled]) -> None:
    for key in request.keys:
        cache.move_to_end(key)
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def main(argv: list[str]) -> None:
    fd, memory_bytes = int(argv[0]), int(argv[1])
    # Ctrl-C reaches the whole process group: the service process decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    warm_up()
    limit(memory_bytes)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the service went away
        sock.sendall(flag_frame("ready"))
        serve(sock)


if __name__ == "__main__":
    main(sys.argv[1:])
