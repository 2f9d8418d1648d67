"""ListAuditEvents: the audit trail's domain values to messages (requests need no mapping)."""

from __future__ import annotations

from google.protobuf import struct_pb2, timestamp_pb2

from credbatch.audit import ActorKind
from credbatch.gen.tenants.v1 import audit_event_pb2, tenants_service_pb2
from services.tenants.audit import AuditEntry, AuditPage

COLLECTION = "auditEvents"

_ACTOR_KINDS = {
    ActorKind.USER: audit_event_pb2.AUDIT_ACTOR_KIND_USER,
    ActorKind.SERVICE: audit_event_pb2.AUDIT_ACTOR_KIND_SERVICE,
    ActorKind.SYSTEM: audit_event_pb2.AUDIT_ACTOR_KIND_SYSTEM,
}


def entry_to_proto(entry: AuditEntry) -> audit_event_pb2.AuditEvent:
    occur_time = timestamp_pb2.Timestamp()
    occur_time.FromDatetime(entry.occurred_at)
    details = struct_pb2.Struct()
    details.update(entry.details)
    return audit_event_pb2.AuditEvent(
        name=f"{COLLECTION}/{entry.id}",
        occur_time=occur_time,
        actor=entry.actor,
        actor_kind=_ACTOR_KINDS[entry.actor_kind],
        action=entry.action,
        resource=entry.resource,
        outcome=entry.outcome,
        request_id=entry.request_id,
        trace_id=entry.trace_id,
        details=details,
    )


def page_to_proto(page: AuditPage) -> tenants_service_pb2.ListAuditEventsResponse:
    return tenants_service_pb2.ListAuditEventsResponse(
        audit_events=[entry_to_proto(e) for e in page.entries],
        next_page_token=page.next_page_token,
    )
