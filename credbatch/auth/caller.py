"""The caller of the RPC being served, set by the edge interceptor."""

from __future__ import annotations

from contextvars import ContextVar

from credbatch.errors import Unauthenticated
from credbatch.tenancy import TenantScope

_current: ContextVar[TenantScope | None] = ContextVar("credbatch_caller", default=None)


def current_caller() -> TenantScope:
    """The authenticated caller; only valid inside an RPC handled behind the interceptor."""
    caller = _current.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller", reason="MISSING_TOKEN")
    return caller


def set_caller(caller: TenantScope | None) -> None:
    _current.set(caller)
