"""End to end: a state change commits, the dispatcher delivers it to a real HTTP receiver, and
the receiver verifies every request with the standardwebhooks package."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from google.protobuf import field_mask_pb2
from standardwebhooks import Webhook

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2, webhooks_service_pb2
from tests.fixtures.webhooks import ALL_BATCH_EVENTS, dispatching, wait_until, with_config
from tests.workers.webhooks.events import admin, create_endpoint, deliveries, finish_batch
from tests.workers.webhooks.receiver import Answer, Receiver

OUTCOME = webhook_endpoint_pb2


def verify(secret: str, received: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


async def test_a_completed_batch_is_delivered_signed_and_thin(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    endpoint = await create_endpoint(
        hooks_stub, settings, tenant, receiver.url("/hooks"), ALL_BATCH_EVENTS
    )
    batch = await finish_batch(
        owner_pool, app_pool, tenant, "COMPLETED_WITH_ERRORS", ("INVITED", "FAILED")
    )
    async with dispatching(app_pool):
        (got,) = await receiver.wait_for("/hooks", 1)
        await wait_until(
            lambda: _outcome_is(
                hooks_stub, settings, tenant, endpoint.name, OUTCOME.DELIVERY_OUTCOME_SUCCEEDED
            )
        )
    payload = verify(endpoint.secret, got)
    assert payload["type"] == "batch.completed_with_errors"
    assert payload["data"]["batch"] == f"batches/{batch.batch_id}"
    assert payload["data"]["record_counts"] == {"invited": 1, "failed": 1}
    assert payload["timestamp"].endswith("Z")
    assert got.headers["webhook-id"].startswith("msg_")
    # Thin: the records' email addresses and attributes stay home.
    assert b"@example.org" not in got.body and b"Ada" not in got.body
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    assert delivery.event_id == got.headers["webhook-id"]
    assert delivery.attempts == 1 and delivery.last_status_code == 200


async def _outcome_is(
    stub: Any, settings: Settings, tenant: uuid.UUID, endpoint: str, outcome: int
) -> bool:
    found = await deliveries(stub, settings, tenant, endpoint)
    return bool(found) and all(d.outcome == outcome for d in found)


async def test_failures_are_retried_with_the_same_webhook_id(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    receiver.script("/flaky", Answer(500), Answer(500))
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/flaky"))
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool):
        attempts = await receiver.wait_for("/flaky", 3)
        await wait_until(
            lambda: _outcome_is(
                hooks_stub, settings, tenant, endpoint.name, OUTCOME.DELIVERY_OUTCOME_SUCCEEDED
            )
        )
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    for attempt in attempts:
        verify(endpoint.secret, attempt)
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    assert delivery.attempts == 3
    assert len(receiver.received["/flaky"]) == 3


async def test_a_delivery_gives_up_when_the_schedule_is_used_up(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    # Three retries on the schedule: four attempts, then FAILED; a 3xx counts as a failure.
    receiver.script(
        "/down", Answer(500), Answer(302, {"location": "http://10.0.0.1/"}), *[Answer(503)] * 4
    )
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/down"))
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool):
        await wait_until(
            lambda: _outcome_is(
                hooks_stub, settings, tenant, endpoint.name, OUTCOME.DELIVERY_OUTCOME_FAILED
            )
        )
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    assert delivery.attempts == 4
    assert "gave up after 4 attempts" in delivery.last_error
    assert [r.path for r in receiver.received["/down"]] == ["/down"] * 4  # no redirect followed


async def test_410_disables_the_endpoint(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    receiver.script("/gone", Answer(410))
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/gone"))
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool):
        await receiver.wait_for("/gone", 1)
        await wait_until(
            lambda: _outcome_is(
                hooks_stub, settings, tenant, endpoint.name, OUTCOME.DELIVERY_OUTCOME_FAILED
            )
        )
    found = await hooks_stub.GetWebhookEndpoint(
        webhooks_service_pb2.GetWebhookEndpointRequest(name=endpoint.name),
        metadata=admin(settings, tenant),
    )
    assert found.disabled and "410" in found.disabled_reason
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    assert delivery.last_status_code == 410
    # A disabled endpoint is not subscribed any more: the next batch raises nothing for it.
    await finish_batch(owner_pool, app_pool, tenant)
    assert len(await deliveries(hooks_stub, settings, tenant, endpoint.name)) == 1
    # Enabled again by hand, it forgets why it was disabled and hears of the next batch.
    enabled = await hooks_stub.UpdateWebhookEndpoint(
        webhooks_service_pb2.UpdateWebhookEndpointRequest(
            webhook_endpoint=webhook_endpoint_pb2.WebhookEndpoint(name=endpoint.name),
            update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
        ),
        metadata=admin(settings, tenant),
    )
    assert not enabled.disabled and enabled.disabled_reason == ""
    await finish_batch(owner_pool, app_pool, tenant)
    assert len(await deliveries(hooks_stub, settings, tenant, endpoint.name)) == 2


async def test_retry_after_replaces_the_scheduled_delay(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    receiver.script("/busy", Answer(429, {"retry-after": "1"}))
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/busy"))
    await finish_batch(owner_pool, app_pool, tenant)
    # The schedule alone would wait 60 s before the second attempt.
    async with dispatching(app_pool, with_config(schedule=(60.0, 60.0))):
        first, second = await receiver.wait_for("/busy", 2, timeout=15)
    assert 0.9 <= second.at - first.at < 10
    verify(endpoint.secret, second)


async def test_both_secrets_sign_during_a_rotation(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/rotating"))
    rotated = await hooks_stub.RotateWebhookEndpointSecret(
        webhooks_service_pb2.RotateWebhookEndpointSecretRequest(name=endpoint.name),
        metadata=admin(settings, tenant),
    )
    assert rotated.secret.startswith("whsec_") and rotated.secret != endpoint.secret
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool):
        (got,) = await receiver.wait_for("/rotating", 1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify(endpoint.secret, got) == verify(rotated.secret, got)
    # Once the old secret's day is over, only the new one signs.
    await owner_pool.execute(
        "UPDATE webhook_secrets SET expires_at = now() WHERE expires_at IS NOT NULL "
        "AND tenant_id = $1",
        tenant,
    )
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool):
        _, later = await receiver.wait_for("/rotating", 2)
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    verify(rotated.secret, later)


async def test_a_secret_stored_in_plain_text_signs_nothing_until_sealed(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    # As a database migrated before secrets were sealed holds it.
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/plain"))
    await owner_pool.execute(
        "UPDATE webhook_secrets SET legacy_secret = $2, secret_enc = NULL, nonce = NULL,"
        " kek_id = NULL WHERE tenant_id = $1",
        tenant,
        endpoint.secret,
    )
    await finish_batch(owner_pool, app_pool, tenant)

    async def refused() -> bool:
        found = await deliveries(hooks_stub, settings, tenant, endpoint.name)
        return bool(found) and "cannot be opened" in found[0].last_error

    async with dispatching(app_pool, with_config(schedule=(60.0,))):
        await wait_until(refused)
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    # Retried later, not given up: sealing the secret lets it through.
    assert delivery.outcome == OUTCOME.DELIVERY_OUTCOME_PENDING
    assert "/plain" not in receiver.received


async def test_redelivery_sends_the_same_event_again(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/again"))
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool):
        await receiver.wait_for("/again", 1)
        await wait_until(
            lambda: _outcome_is(
                hooks_stub, settings, tenant, endpoint.name, OUTCOME.DELIVERY_OUTCOME_SUCCEEDED
            )
        )
        (first,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
        again = await hooks_stub.RedeliverWebhookEvent(
            webhooks_service_pb2.RedeliverWebhookEventRequest(name=first.name),
            metadata=admin(settings, tenant),
        )
        assert again.event_id == first.event_id and again.name != first.name
        one, two = await receiver.wait_for("/again", 2)
    assert one.headers["webhook-id"] == two.headers["webhook-id"]
    verify(endpoint.secret, two)


async def test_an_endpoint_failing_too_long_is_disabled(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    receiver.script("/broken", *[Answer(500)] * 20)
    endpoint = await create_endpoint(hooks_stub, settings, tenant, receiver.url("/broken"))
    await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool, with_config(schedule=(0.2,) * 10, disable_after=0.5)):
        await wait_until(
            lambda: _outcome_is(
                hooks_stub, settings, tenant, endpoint.name, OUTCOME.DELIVERY_OUTCOME_FAILED
            )
        )
    found = await hooks_stub.GetWebhookEndpoint(
        webhooks_service_pb2.GetWebhookEndpointRequest(name=endpoint.name),
        metadata=admin(settings, tenant),
    )
    assert found.disabled and "every delivery failed for" in found.disabled_reason
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    assert delivery.last_error.startswith("endpoint disabled: every delivery failed for")


async def test_each_endpoint_has_at_most_its_cap_in_flight(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    receiver.script("/slow", *[Answer(200, delay=1.0)] * 4)
    await create_endpoint(hooks_stub, settings, tenant, receiver.url("/slow"))
    for _ in range(4):
        await finish_batch(owner_pool, app_pool, tenant)
    async with dispatching(app_pool, with_config(per_endpoint=2)):
        await receiver.wait_for("/slow", 4)
    # Two at once, never three: the third only once one of the first two answered.
    assert receiver.most_in_flight["/slow"] == 2


async def test_a_name_resolving_to_loopback_is_refused_at_delivery_in_production(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    # Accepted while the service runs in development (loopback is allowed there); the
    # production dispatcher resolves the name at delivery and refuses what it points at.
    url = receiver.url("/internal").replace("http://127.0.0.1", "https://localhost")
    endpoint = await create_endpoint(hooks_stub, settings, tenant, url)
    await finish_batch(owner_pool, app_pool, tenant)
    # Refused at the first attempt: the next would come only after the schedule's 60 s, long
    # after wait_until's deadline.
    async with dispatching(app_pool, with_config(development=False, schedule=(60.0,))):
        await wait_until(
            lambda: _has_error(hooks_stub, settings, tenant, endpoint.name, "address refused")
        )
    (delivery,) = await deliveries(hooks_stub, settings, tenant, endpoint.name)
    assert "localhost: " in delivery.last_error and "non-public range" in delivery.last_error
    assert delivery.last_status_code == 0
    assert receiver.received["/internal"] == []


async def _has_error(
    stub: Any, settings: Settings, tenant: uuid.UUID, endpoint: str, text: str
) -> bool:
    return any(text in d.last_error for d in await deliveries(stub, settings, tenant, endpoint))
