"""What rendering in render processes costs per record, against rendering in the process.

A worker renders a group's invitations in one request (credbatch.templating.runner): here,
groups of ``--group`` emails (subject, HTML and text bodies, like the default template), and
certificates, rendered in this process (the sandbox alone) and through a RenderPool; it
prints the CPU per record of this process and of the render processes, and the wall time per
group.

    python bench/rendering.py
    python bench/rendering.py --groups 400 --group 25
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from credbatch.templating.certificate import CompiledCertificate
from credbatch.templating.runner import CertificateJob, Job, RenderPool, TextJob
from credbatch.templating.runner.jobs import run
from credbatch.templating.sandbox import CompiledTemplate

_TICKS = os.sysconf("SC_CLK_TCK")
SUBJECT = CompiledTemplate("Your credential from {{ issuer_name }}")
HTML = CompiledTemplate(
    "<p>Dear {{ full_name }},</p><p>{{ issuer_name }} issued you a credential.</p>"
    '<p><a href="{{ claim_url }}">Claim it</a>{% if offer_url %} or open '
    '<a href="{{ offer_url }}">your wallet</a>{% endif %}.</p>',
    html=True,
)
TEXT = CompiledTemplate(
    "Dear {{ full_name }},\n\n{{ issuer_name }} issued you a credential: {{ claim_url }}\n"
)
CERTIFICATE = CompiledCertificate(
    "Certificate of completion", "This certifies that {{ full_name }} scored {{ score }}."
)


def values(i: int) -> dict[str, str]:
    return {
        "full_name": f"Holder Number {i}",
        "issuer_name": "Example Issuer",
        "claim_url": f"https://issuer.example/claim/{i:032x}",
        "offer_url": f"openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fx%2F{i}",
        "score": str(i % 100),
    }


def children_cpu(pool: RenderPool) -> float:
    total = 0.0
    for process in pool._alive:
        fields = Path(f"/proc/{process.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


async def measure(name: str, groups: list[list[Job]], pool: RenderPool | None) -> None:
    records = sum(len(group) for group in groups)
    children = children_cpu(pool) if pool else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    for group in groups:
        if pool is None:
            for job in group:
                if isinstance(job, TextJob):
                    run(job.templates, job.values, None)
                else:
                    run((job.certificate,), job.values, job.cred_url)
        else:
            await pool.render("bench", group)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    children = (children_cpu(pool) - children) if pool else 0.0
    print(
        f"{name:>34}: this process {cpu / records * 1e6:7.1f} µs/record, render processes "
        f"{children / records * 1e6:7.1f} µs/record, {wall / len(groups) * 1e3:6.2f} ms/group",
        flush=True,
    )


async def main(group_count: int, size: int) -> None:
    emails: list[list[Job]] = [
        [TextJob((SUBJECT, HTML, TEXT), values(g * size + i)) for i in range(size)]
        for g in range(group_count)
    ]
    certificates: list[list[Job]] = [
        [CertificateJob(CERTIFICATE, values(i), f"https://x.example/c/{i}") for i in range(size)]
        for _ in range(max(1, group_count // 10))
    ]
    pool = RenderPool(2, 1.0)
    await pool.start()
    try:
        await pool.render("bench", emails[0] + certificates[0])  # compiled there once
        print(f"cores: {os.cpu_count()}; load: {Path('/proc/loadavg').read_text().split()[:3]}")
        for label, groups in (("emails", emails), ("certificates", certificates)):
            await measure(f"{label}, in this process", groups, None)
            await measure(f"{label}, in render processes", groups, pool)
    finally:
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--group", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(main(args.groups, args.group))
