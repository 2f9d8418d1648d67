"""How many PostgreSQL connections each process's pools may open, read from the environment.

Every pool of every process has its own ``CREDBATCH_*_POOL_MAX``; the sum over all replicas is
the connection budget of docs/connections.md, which a PgBouncer in transaction mode (or
PostgreSQL's ``max_connections`` without one) has to cover. ``CREDBATCH_DB_POOL_MIN`` is the
connections each pool keeps open while idle (at most its maximum).

``CREDBATCH_DB_STATEMENT_CACHE_SIZE`` is asyncpg's per-connection cache of named prepared
statements. A PgBouncer in transaction mode older than 1.21, or one without
``max_prepared_statements``, hands each transaction whichever server connection is free, where
the statement was never prepared: such a pooler needs 0 (every query then goes as an unnamed
statement, parsed again each time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict

from credbatch.env_values import env_int

PoolName = Literal[
    "templates",
    "uploads",
    "batch_status",
    "webhooks",
    "tenants",
    "public",
    "signer",
    "relay",
    "relay_dead_letters",
    "worker",
    "refresher",
    "dispatcher",
    "dispatcher_claim",
    "bounces",
]
# The pools, each with the variable holding its maximum.
POOL_VARIABLES: dict[PoolName, str] = {
    "templates": "CREDBATCH_TEMPLATES_POOL_MAX",
    "uploads": "CREDBATCH_UPLOADS_POOL_MAX",
    "batch_status": "CREDBATCH_BATCH_STATUS_POOL_MAX",
    "webhooks": "CREDBATCH_WEBHOOKS_POOL_MAX",
    "tenants": "CREDBATCH_TENANTS_POOL_MAX",
    "public": "CREDBATCH_PUBLIC_POOL_MAX",
    "signer": "CREDBATCH_SIGNER_POOL_MAX",
    "relay": "CREDBATCH_RELAY_POOL_MAX",
    "relay_dead_letters": "CREDBATCH_RELAY_DEAD_LETTERS_POOL_MAX",
    "worker": "CREDBATCH_WORKER_POOL_MAX",
    "refresher": "CREDBATCH_REFRESHER_POOL_MAX",
    "dispatcher": "CREDBATCH_DISPATCHER_POOL_MAX",
    "dispatcher_claim": "CREDBATCH_DISPATCHER_CLAIM_POOL_MAX",
    "bounces": "CREDBATCH_BOUNCES_POOL_MAX",
}
MIN_VARIABLE = "CREDBATCH_DB_POOL_MIN"
STATEMENT_CACHE_VARIABLE = "CREDBATCH_DB_STATEMENT_CACHE_SIZE"
# asyncpg's own default.
DEFAULT_STATEMENT_CACHE_SIZE = 100
# An issue transaction loads contexts, keys and status indexes through a second connection
# while it holds its own (workers/issuance/handler.py keeps one free for them), so a worker
# pool of one connection could never issue anything.
WORKER_POOL_LEAST = 2


def default_worker_pool(prefetch: int) -> int:
    """The worker pool's default: one connection per ten prefetched jobs, at least four."""
    return max(4, prefetch // 10)


class PoolArgs(TypedDict):
    """The keyword arguments of ``credbatch.db.pool.create_pool`` that size a pool."""

    min_size: int
    max_size: int
    statement_cache_size: int


@dataclass(frozen=True)
class PoolSizes:
    """The maximum connections of every pool, the idle minimum and the statement cache."""

    templates: int = 10
    uploads: int = 10
    batch_status: int = 10
    webhooks: int = 10
    tenants: int = 4
    public: int = 8
    signer: int = 4
    relay: int = 5
    relay_dead_letters: int = 1
    worker: int = default_worker_pool(100)
    refresher: int = 1
    dispatcher: int = 4
    dispatcher_claim: int = 2
    bounces: int = 4
    min_size: int = 1
    statement_cache_size: int = DEFAULT_STATEMENT_CACHE_SIZE

    def args(self, pool: PoolName) -> PoolArgs:
        """How to size the pool named ``pool``."""
        max_size: int = getattr(self, pool)
        return {
            "min_size": min(self.min_size, max_size),
            "max_size": max_size,
            "statement_cache_size": self.statement_cache_size,
        }


def pool_sizes(env: Mapping[str, str], worker_prefetch: int) -> PoolSizes:
    """The pool sizes from ``env``; the worker's default follows ``worker_prefetch``."""
    defaults = PoolSizes(worker=default_worker_pool(worker_prefetch))
    sizes = {
        pool: env_int(
            env, variable, getattr(defaults, pool), WORKER_POOL_LEAST if pool == "worker" else 1
        )
        for pool, variable in POOL_VARIABLES.items()
    }
    min_size = env_int(env, MIN_VARIABLE, defaults.min_size, 0)
    cache = env_int(env, STATEMENT_CACHE_VARIABLE, defaults.statement_cache_size, 0)
    return PoolSizes(**sizes, min_size=min_size, statement_cache_size=cache)
