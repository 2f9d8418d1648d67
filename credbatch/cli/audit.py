"""`credbatch audit`: the tenant's audit trail, newest first (org admins only).

``--filter`` takes the ListAuditEvents filter as is; ``--actor``, ``--action``,
``--resource``, ``--outcome``, ``--since`` and ``--until`` are shorthands joined to it with
AND, each value quoted, so a value is never read as filter syntax.
"""

from __future__ import annotations

import json
from typing import Any

import click
from google.protobuf.json_format import MessageToDict

from credbatch.cli.client import (
    UNARY_TIMEOUT,
    address_option,
    channel,
    resolve,
    rpc_errors,
    token_option,
)
from credbatch.cli.output import enum_label, table, timestamp
from credbatch.gen.tenants.v1 import audit_event_pb2, tenants_service_pb2, tenants_service_pb2_grpc


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_text(
    base: str,
    *,
    actor: str = "",
    action: str = "",
    resource: str = "",
    outcome: str = "",
    since: str = "",
    until: str = "",
) -> str:
    """``base`` and the shorthands, joined with AND (empty parts left out)."""
    parts = [base.strip()] if base.strip() else []
    for field, value in (
        ("actor", actor),
        ("action", action),
        ("resource", resource),
        ("outcome", outcome),
    ):
        if value:
            parts.append(f"{field} = {_quoted(value)}")
    if since:
        parts.append(f"occur_time >= {_quoted(since)}")
    if until:
        parts.append(f"occur_time < {_quoted(until)}")
    return " AND ".join(parts)


def _whole(value: Any) -> Any:
    # A Struct holds every number as a double; counts read better as integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def _details(event: audit_event_pb2.AuditEvent) -> str:
    details = {key: _whole(value) for key, value in MessageToDict(event.details).items()}
    return json.dumps(details, separators=(",", ":"), sort_keys=True)


@click.command("audit")
@click.option("--filter", "filter_", default="", help='e.g. action = "batch.cancel"')
@click.option("--actor", default="", help="Only this actor (a token subject).")
@click.option("--action", default="", help="Only this action, e.g. batch.upload.")
@click.option("--resource", default="", help="Only this resource, e.g. batches/ID.")
@click.option("--outcome", default="", help="Only this outcome: OK or an error reason.")
@click.option("--since", default="", help="From this RFC 3339 time on, e.g. 2026-03-01T00:00Z.")
@click.option("--until", default="", help="Before this RFC 3339 time.")
@click.option("--limit", default=50, show_default=True, help="How many entries, newest first.")
@token_option
@address_option("tenants")
def audit(
    filter_: str,
    actor: str,
    action: str,
    resource: str,
    outcome: str,
    since: str,
    until: str,
    limit: int,
    token: str | None,
    tenants_addr: str,
) -> None:
    """List the tenant's audit trail: who changed what, when, with which outcome."""
    text = filter_text(
        filter_,
        actor=actor,
        action=action,
        resource=resource,
        outcome=outcome,
        since=since,
        until=until,
    )
    endpoint = resolve("tenants", token, tenants_addr)
    found: list[audit_event_pb2.AuditEvent] = []
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = tenants_service_pb2_grpc.TenantServiceStub(chan)
        page_token = ""
        while len(found) < limit:
            response = stub.ListAuditEvents(
                tenants_service_pb2.ListAuditEventsRequest(
                    page_size=min(limit - len(found), 1000), page_token=page_token, filter=text
                ),
                metadata=endpoint.metadata,
                timeout=UNARY_TIMEOUT,
            )
            found.extend(response.audit_events)
            page_token = response.next_page_token
            if not page_token:
                break
    table(
        f"{len(found[:limit])} audit event(s)",
        ["time", "actor", "kind", "action", "resource", "outcome", "request id", "details"],
        (
            [
                timestamp(e.occur_time),
                e.actor,
                enum_label(audit_event_pb2.AuditActorKind.Name(e.actor_kind), "AUDIT_ACTOR_KIND_"),
                e.action,
                e.resource,
                e.outcome,
                e.request_id,
                _details(e),
            ]
            for e in found[:limit]
        ),
    )
