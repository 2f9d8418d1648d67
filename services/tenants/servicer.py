"""TenantService servicer: requests to domain calls and back, nothing more.

Each RPC is one method delegating to the module that owns it (``profiles`` for the profile,
``erasure`` for EraseHolder, ``audit`` for the audit trail).
"""

from __future__ import annotations

from typing import Any

import grpc

from credbatch.auth.caller import current_caller
from credbatch.gen.tenants.v1 import tenant_pb2, tenants_service_pb2, tenants_service_pb2_grpc
from services.tenants import audit_mapping, erasure_mapping, mapping
from services.tenants.audit import AuditTrail
from services.tenants.erasure import HolderErasure
from services.tenants.profiles import TenantProfiles

Context = grpc.aio.ServicerContext[Any, Any]


class TenantServicer(tenants_service_pb2_grpc.TenantServiceServicer):
    """The caller's tenant: its profile, the erasure of its holders and its audit trail."""

    def __init__(
        self,
        profiles: TenantProfiles,
        public_url: str,
        audit: AuditTrail,
        erasure: HolderErasure,
    ) -> None:
        self._profiles = profiles
        self._public_url = public_url
        self._audit = audit
        self._erasure = erasure

    async def GetTenantProfile(
        self, request: tenants_service_pb2.GetTenantProfileRequest, context: Context
    ) -> tenant_pb2.TenantProfile:
        mapping.check_name(request.name)
        caller = current_caller()
        found = await self._profiles.get(caller)
        return mapping.profile_to_proto(found, self._public_url, caller.tenant_id)

    async def UpdateTenantProfile(
        self, request: tenants_service_pb2.UpdateTenantProfileRequest, context: Context
    ) -> tenant_pb2.TenantProfile:
        caller = current_caller()
        updated = await self._profiles.update(caller, mapping.profile_update(request))
        return mapping.profile_to_proto(updated, self._public_url, caller.tenant_id)

    async def ListAuditEvents(
        self, request: tenants_service_pb2.ListAuditEventsRequest, context: Context
    ) -> tenants_service_pb2.ListAuditEventsResponse:
        page = await self._audit.list(
            current_caller(), request.filter, request.page_size, request.page_token
        )
        return audit_mapping.page_to_proto(page)

    async def EraseHolder(
        self, request: tenants_service_pb2.EraseHolderRequest, context: Context
    ) -> tenants_service_pb2.EraseHolderResponse:
        holder, credentials, reason = erasure_mapping.erase_request(request)
        erased = await self._erasure.erase(current_caller(), holder, credentials, reason)
        return erasure_mapping.erased_to_proto(erased)
