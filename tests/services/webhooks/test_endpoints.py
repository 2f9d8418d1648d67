"""WebhookService endpoints: create, read, list, update, delete, rotate; roles; SSRF refusals."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2 as pb
from credbatch.gen.webhooks.v1 import webhooks_service_pb2 as api
from tests.fixtures.grpc import bearer, fails
from tests.workers.webhooks.events import admin

URL = "https://127.0.0.1:9/hooks"


def _create(
    url: str = URL, request_id: str = "", **fields: Any
) -> api.CreateWebhookEndpointRequest:
    fields.setdefault("event_types", [pb.EVENT_TYPE_BATCH_COMPLETED])
    return api.CreateWebhookEndpointRequest(
        webhook_endpoint=pb.WebhookEndpoint(url=url, **fields), request_id=request_id
    )


async def test_create_answers_the_secret_once(settings: Settings, hooks_stub: Any) -> None:
    tenant = uuid.uuid4()
    created = await hooks_stub.CreateWebhookEndpoint(
        _create(description="billing", request_id="r-1"), metadata=admin(settings, tenant)
    )
    assert created.name.startswith("webhookEndpoints/")
    assert created.secret.startswith("whsec_")
    assert len(base64.b64decode(created.secret[len("whsec_") :])) >= 24
    assert list(created.event_types) == [pb.EVENT_TYPE_BATCH_COMPLETED]
    assert created.description == "billing" and not created.disabled
    got = await hooks_stub.GetWebhookEndpoint(
        api.GetWebhookEndpointRequest(name=created.name), metadata=admin(settings, tenant)
    )
    assert got.secret == "" and got.url == URL
    # The same request again: the same endpoint, and the secret is not shown again.
    again = await hooks_stub.CreateWebhookEndpoint(
        _create(description="billing", request_id="r-1"), metadata=admin(settings, tenant)
    )
    assert again.name == created.name and again.secret == ""
    # The same request id with another request is refused, not answered with the first.
    reused = await fails(
        hooks_stub.CreateWebhookEndpoint(
            _create(request_id="r-1"), metadata=admin(settings, tenant)
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert reused.info.reason == "REQUEST_ID_REUSED"


async def test_list_pages_newest_first(settings: Settings, hooks_stub: Any) -> None:
    tenant = uuid.uuid4()
    names = [
        (await hooks_stub.CreateWebhookEndpoint(_create(), metadata=admin(settings, tenant))).name
        for _ in range(3)
    ]
    first = await hooks_stub.ListWebhookEndpoints(
        api.ListWebhookEndpointsRequest(page_size=2), metadata=admin(settings, tenant)
    )
    second = await hooks_stub.ListWebhookEndpoints(
        api.ListWebhookEndpointsRequest(page_size=2, page_token=first.next_page_token),
        metadata=admin(settings, tenant),
    )
    listed = [e.name for e in [*first.webhook_endpoints, *second.webhook_endpoints]]
    assert listed == names[::-1]
    assert second.next_page_token == ""
    assert all(e.secret == "" for e in first.webhook_endpoints)


async def test_update_follows_the_mask(settings: Settings, hooks_stub: Any) -> None:
    tenant = uuid.uuid4()
    created = await hooks_stub.CreateWebhookEndpoint(
        _create(description="before"), metadata=admin(settings, tenant)
    )
    updated = await hooks_stub.UpdateWebhookEndpoint(
        api.UpdateWebhookEndpointRequest(
            webhook_endpoint=pb.WebhookEndpoint(
                name=created.name,
                disabled=True,
                event_types=[pb.EVENT_TYPE_RECORD_FAILED, pb.EVENT_TYPE_BATCH_FAILED],
                description="ignored: not in the mask",
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["disabled", "event_types"]),
        ),
        metadata=admin(settings, tenant),
    )
    assert updated.disabled
    assert list(updated.event_types) == [pb.EVENT_TYPE_RECORD_FAILED, pb.EVENT_TYPE_BATCH_FAILED]
    assert updated.description == "before"
    refused = await fails(
        hooks_stub.UpdateWebhookEndpoint(
            api.UpdateWebhookEndpointRequest(
                webhook_endpoint=pb.WebhookEndpoint(name=created.name, url="https://x.test/"),
                update_mask=field_mask_pb2.FieldMask(paths=["url"]),
            ),
            metadata=admin(settings, tenant),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert refused.fields == ["update_mask"]


async def test_delete_then_not_found(settings: Settings, hooks_stub: Any) -> None:
    tenant = uuid.uuid4()
    created = await hooks_stub.CreateWebhookEndpoint(_create(), metadata=admin(settings, tenant))
    await hooks_stub.DeleteWebhookEndpoint(
        api.DeleteWebhookEndpointRequest(name=created.name), metadata=admin(settings, tenant)
    )
    await fails(
        hooks_stub.GetWebhookEndpoint(
            api.GetWebhookEndpointRequest(name=created.name), metadata=admin(settings, tenant)
        ),
        grpc.StatusCode.NOT_FOUND,
    )


@pytest.mark.parametrize("roles", [["issuer"], ["observer"]])
async def test_only_org_admin_and_service_may_call(
    settings: Settings, hooks_stub: Any, roles: list[str]
) -> None:
    tenant = uuid.uuid4()
    await fails(
        hooks_stub.ListWebhookEndpoints(
            api.ListWebhookEndpointsRequest(),
            metadata=bearer(settings, tenant, "someone", roles, ["default"]),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    service = bearer(settings, tenant, "platform", ["service"])
    created = await hooks_stub.CreateWebhookEndpoint(_create(), metadata=service)
    assert created.secret


@pytest.mark.parametrize(
    ("url", "event_types", "field"),
    [
        ("ftp://127.0.0.1/x", [pb.EVENT_TYPE_BATCH_COMPLETED], "webhook_endpoint.url"),
        ("http://10.1.2.3/x", [pb.EVENT_TYPE_BATCH_COMPLETED], "webhook_endpoint.url"),
        ("", [pb.EVENT_TYPE_BATCH_COMPLETED], "webhook_endpoint.url"),
        (URL, [], "webhook_endpoint.event_types"),
    ],
)
async def test_invalid_endpoints_are_refused(
    settings: Settings, hooks_stub: Any, url: str, event_types: list[pb.EventType], field: str
) -> None:
    refused = await fails(
        hooks_stub.CreateWebhookEndpoint(
            api.CreateWebhookEndpointRequest(
                webhook_endpoint=pb.WebhookEndpoint(url=url, event_types=event_types)
            ),
            metadata=admin(settings, uuid.uuid4()),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert field in refused.fields


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://172.20.1.1/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://100.64.1.1/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://224.0.0.5/hook",
        "http://127.0.0.1/hook",
        # IPv6 forms that reach IPv4 internals, and IPv6 that is not global unicast.
        "https://[64:ff9b:1::a9fe:a9fe]/",
        "https://[::a9fe:a9fe]/",
        "https://[::ffff:0:a9fe:a9fe]/",
        "https://[::ffff:a9fe:a9fe]/",
        "https://[2002:a9fe:a9fe::1]/",
        "https://[fec0::1]/",
        "https://[3fff::1]/",
        "https://[5f00::1]/",
    ],
)
async def test_production_refuses_non_public_targets(
    settings: Settings, production_stub: Any, url: str
) -> None:
    refused = await fails(
        production_stub.CreateWebhookEndpoint(_create(url), metadata=admin(settings, uuid.uuid4())),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert refused.fields == ["webhook_endpoint.url"]
    assert refused.violations[0].reason == "URL_REFUSED"


async def test_production_accepts_public_https(settings: Settings, production_stub: Any) -> None:
    created = await production_stub.CreateWebhookEndpoint(
        _create("https://8.8.8.8/hook"), metadata=admin(settings, uuid.uuid4())
    )
    assert created.url == "https://8.8.8.8/hook"
