"""GetTenantProfile and UpdateTenantProfile in domain terms: checks, then the profile table.

Each call runs in one tenant transaction for the caller, so row-level security decides whose
profile is read or written; role checks happen at the edge (credbatch.auth.rules).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import asyncpg

from credbatch import audit
from credbatch.audit import Action
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.tenancy import TenantScope, tenant_transaction
from credbatch.tenants import profile as profiles
from credbatch.tenants import validation
from credbatch.tenants.logo import LogoRefused, accept_logo
from credbatch.tenants.profile import TenantProfile

_PROFILE = "tenantProfile"


@dataclass(frozen=True)
class ProfileUpdate:
    """The fields an update names (``paths``) with their new values in ``values``; the logo's
    upload in ``logo_content`` (empty = remove the logo)."""

    paths: tuple[str, ...]
    values: TenantProfile
    logo_content: bytes = b""


class TenantProfiles:
    """The caller tenant's profile."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, scope: TenantScope) -> TenantProfile:
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            return await profiles.load(conn)

    async def update(self, scope: TenantScope, update: ProfileUpdate) -> TenantProfile:
        """Apply ``update``; InvalidArgument listing every problem, and nothing stored, if any.

        Audited in its transaction with the names of the fields it set (never their values:
        a support contact may be a person's), and when refused.
        """
        async with audit.failures_recorded(
            self._pool, scope, Action.TENANT_PROFILE_UPDATE, _PROFILE
        ):
            return await self._update(scope, update)

    async def _update(self, scope: TenantScope, update: ProfileUpdate) -> TenantProfile:
        values = update.values
        found: list[FieldViolation] = []
        if "logo" in update.paths:
            try:
                logo = accept_logo(update.logo_content) if update.logo_content else None
            except LogoRefused as error:
                found.append(
                    FieldViolation("tenant_profile.logo.content", str(error), "INVALID_LOGO")
                )
                logo = None
            values = replace(values, logo=logo)
        changes = {path: getattr(values, path) for path in update.paths}
        async with tenant_transaction(self._pool, scope) as conn:
            current = await profiles.lock(conn)
            merged = replace(current, **changes)
            found += validation.violations(merged)
            if found:
                raise InvalidArgument("the tenant profile is not valid", violations=found)
            saved = await profiles.save(conn, validation.normalised(merged))
            await audit.record(
                conn,
                scope,
                Action.TENANT_PROFILE_UPDATE,
                _PROFILE,
                details={"fields": sorted(update.paths)},
            )
            return saved
