"""Transitional: the issuance harness moved to tests.fixtures.issuance (a pytest plugin).

Only modules outside tests/workers/issuance still import it from here; delete this file once
they import tests.fixtures.issuance.
"""

from tests.fixtures.issuance import (
    KEK,
    PublicServer,
    Sinks,
    arrange_batch,
    public_server,
    publish_jobs,
    record_states,
    running_worker,
    sinks,
    wait_for_batch,
    worker_settings,
)

__all__ = [
    "KEK",
    "PublicServer",
    "Sinks",
    "arrange_batch",
    "public_server",
    "publish_jobs",
    "record_states",
    "running_worker",
    "sinks",
    "wait_for_batch",
    "worker_settings",
]
