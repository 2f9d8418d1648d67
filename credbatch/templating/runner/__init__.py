"""Renders in processes of their own, stopped by force when they run away.

The sandbox (credbatch.templating.sandbox) prices everything a template can do; this is the
layer under it, for what a price got wrong: every render of a tenant's template, in the
issuance workers and in the template service (creation's trial renders and previews), runs in
a render process (``child``) that holds no secret, can open nothing, is limited in CPU time and
address space, and is killed and replaced when a job outlives its budget plus a grace period
(``pool.RenderPool``). What crosses between them is in ``wire``; the jobs in ``jobs``.
"""

from credbatch.templating.runner.jobs import (
    CertificateJob,
    Job,
    Rendered,
    Renderer,
    Result,
    TextJob,
)
from credbatch.templating.runner.pool import RenderPool, RenderUnavailable

__all__ = [
    "CertificateJob",
    "Job",
    "RenderPool",
    "RenderUnavailable",
    "Rendered",
    "Renderer",
    "Result",
    "TextJob",
]
