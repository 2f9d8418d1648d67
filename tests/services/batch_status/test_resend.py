"""ResendInvitations against the real issuance worker, relay, public endpoints and sinks.

The batch is issued and invited by ``workers.issuance``; the resend goes through the real
BatchStatusService over gRPC (as the application role), the relay publishes the resent
records, the worker mails them again, and a wallet's requests go to the public app's offer and
token endpoints over HTTP.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
import grpc
import httpx

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from tests.fixtures.batches import insert_batch, record_states
from tests.fixtures.grpc import bearer, fails
from tests.fixtures.issuance import (
    Arranged,
    PublicServer,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)
from tests.services.batch_status.test_commands_with_workers import (
    running_relay,
    wait_until_drained,
)

PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
_OFFER = re.compile(r"openid-credential-offer://\S+")
_CLAIM = re.compile(r"/claim/\S+")
_CODE = re.compile(r"code (\d{6})")


def mails_to(sinks: Sinks, address: str) -> list[str]:
    """The plain-text bodies of the mails the sink got for ``address``, oldest first."""
    texts = []
    for recipients, raw in sinks.smtp.messages:
        if recipients[0] == address:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            assert isinstance(body, email.message.EmailMessage)
            texts.append(str(body.get_content()))
    return texts


def offer_urls(sinks: Sinks, address: str) -> list[str]:
    return [_OFFER.findall(text)[0] for text in mails_to(sinks, address)]


def sms_codes(sinks: Sinks, phone: str) -> list[str]:
    return [_CODE.findall(m["body"])[0] for m in sinks.sms.messages if m["to"] == phone]


def offer_path(offer_url: str, public_url: str) -> str:
    uri = parse_qs(urlparse(offer_url).query)["credential_offer_uri"][0]
    assert uri.startswith(public_url)
    return uri[len(public_url) :]


async def token(
    client: httpx.AsyncClient, tenant_id: uuid.UUID, offer_url: str, tx_code: str
) -> httpx.Response:
    code = offer_path(offer_url, str(client.base_url)).rsplit("/", 1)[1]
    form = {"grant_type": PRE_AUTHORIZED, "pre-authorized_code": code, "tx_code": tx_code}
    return await client.post(f"/tenants/{tenant_id}/token", data=form)


async def arrange_invitable(owner_pool: asyncpg.Pool, count: int, **kwargs: Any) -> Arranged:
    """A batch whose mail carries the offer link and the claim link, and whose SMS the code.

    Phones are made unique: other tests' batches use the same numbers.
    """
    arranged = await arrange_batch(owner_pool, count, certificate=False, **kwargs)
    await owner_pool.execute(
        "UPDATE email_templates SET text_body = 'offer {{ offer_url }} claim {{ claim_url }}'"
        " WHERE tenant_id = $1",
        arranged.tenant_id,
    )
    await owner_pool.execute(
        "UPDATE sms_templates SET body = 'code {{ tx_code }}' WHERE tenant_id = $1",
        arranged.tenant_id,
    )
    for row, record_id in zip(arranged.rows, arranged.record_ids, strict=True):
        row["phone"] = "+1" + str(uuid.uuid4().int)[:10].rjust(10, "2")
        await owner_pool.execute(
            "UPDATE records SET phone = $2 WHERE id = $1", record_id, row["phone"]
        )
    return arranged


async def wait_for_mails(sinks: Sinks, address: str, count: int, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(mails_to(sinks, address)) < count:
        assert loop.time() < deadline, f"{address} got {len(mails_to(sinks, address))} mails"
        await asyncio.sleep(0.1)


async def test_a_resend_mails_a_fresh_offer_and_the_old_one_is_gone(
    batches_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    arranged = await arrange_invitable(owner_pool, 3, mediums=("EMAIL", "SMS"))
    tenant = arranged.tenant_id
    name = f"batches/{arranged.batch_id}"
    md = bearer(settings, tenant, "root", ["org_admin"])
    lost, other, claimed = arranged.rows
    await publish_jobs(worker_settings, arranged)
    client = httpx.AsyncClient(base_url=public_server.url)
    async with client, running_worker(worker_settings), running_relay(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
        [old_offer] = offer_urls(sinks, lost["email"])
        [old_code] = sms_codes(sinks, lost["phone"])
        [old_claim_link] = _CLAIM.findall(mails_to(sinks, lost["email"])[0])
        # The holder (or whoever found the lost phone) had already exchanged the old code.
        granted = await token(client, tenant, old_offer, old_code)
        assert granted.status_code == 200, granted.text
        old_access_token = granted.json()["access_token"]
        valid = await client.post(
            f"/tenants/{tenant}/credential",
            json={},
            headers={"Authorization": f"Bearer {old_access_token}"},
        )
        assert valid.status_code == 400, "the access token was not good before the resend"
        # The third holder took the credential: nothing is sent to it again.
        await owner_pool.execute(
            "UPDATE records SET state = 'CLAIMED', claimed_at = now() WHERE id = $1",
            arranged.record_ids[2],
        )

        request = batches_service_pb2.ResendInvitationsRequest(name=name, request_id="lost-1")
        response = await batches_stub.ResendInvitations(request, metadata=md)
        assert (response.resent_count, response.claimed_count) == (2, 1)
        assert response.in_progress_count == response.busy_count == response.failed_count == 0
        assert response.batch.state == batch_pb2.BATCH_STATE_IN_PROGRESS

        await wait_for_mails(sinks, lost["email"], 2)
        await wait_for_mails(sinks, other["email"], 2)
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
        await wait_until_drained(worker_settings.amqp_url)

        # A retried call answers the same and sends nothing again.
        again = await batches_stub.ResendInvitations(request, metadata=md)
        assert (again.resent_count, again.claimed_count) == (2, 1)
        await asyncio.sleep(1.0)
        await wait_until_drained(worker_settings.amqp_url)

        first_offer, new_offer = offer_urls(sinks, lost["email"])
        assert first_offer == old_offer and new_offer != old_offer
        first_code, new_code = sms_codes(sinks, lost["phone"])
        assert first_code == old_code
        # The same claim link (the claim page's credential is the one issued), a new offer.
        assert _CLAIM.findall(mails_to(sinks, lost["email"])[1]) == [old_claim_link]

        old_path = offer_path(old_offer, public_server.url)
        new_path = offer_path(new_offer, public_server.url)
        gone = await client.get(old_path)
        assert gone.status_code == 410, gone.text
        # The claim page, still at the same link, offers the new offer, never the old one.
        page = await client.get(old_claim_link)
        assert page.status_code == 200, page.text
        shown = html.unescape(page.text)
        assert new_offer in shown and old_offer not in shown
        refused = await token(client, tenant, old_offer, old_code)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        stale = await client.post(
            f"/tenants/{tenant}/credential",
            json={},
            headers={"Authorization": f"Bearer {old_access_token}"},
        )
        assert stale.status_code == 401, stale.text
        # The old code is refused with the new SMS code too; the new offer works with it.
        crossed = await token(client, tenant, old_offer, new_code)
        assert crossed.status_code == 400
        offered = await client.get(new_path)
        assert offered.status_code == 200, offered.text
        assert "tx_code" in offered.json()["grants"][PRE_AUTHORIZED]
        exchanged = await token(client, tenant, new_offer, new_code)
        assert exchanged.status_code == 200, exchanged.text

    assert len(mails_to(sinks, claimed["email"])) == 1
    assert len(mails_to(sinks, lost["email"])) == len(mails_to(sinks, other["email"])) == 2
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 2, "CLAIMED": 1}
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM credentials WHERE batch_id = $1", arranged.batch_id
        )
        == 3
    ), "a resend issued a credential"


async def test_a_claim_page_batch_mails_the_same_link_to_the_chosen_record(
    batches_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    arranged = await arrange_invitable(owner_pool, 2, mediums=("EMAIL",), claim_mode="DOWNLOAD")
    name = f"batches/{arranged.batch_id}"
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    chosen, left = arranged.rows
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings), running_relay(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
        response = await batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(
                name=name, record_ids=[str(arranged.record_ids[0])]
            ),
            metadata=md,
        )
        assert response.resent_count == 1
        await wait_for_mails(sinks, chosen["email"], 2)
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
        await wait_until_drained(worker_settings.amqp_url)

    first, second = mails_to(sinks, chosen["email"])
    assert _CLAIM.findall(first) == _CLAIM.findall(second) != []
    assert len(mails_to(sinks, left["email"])) == 1
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 2}


async def test_records_not_yet_invited_or_finished_otherwise_are_skipped_by_reason(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    states = ["INVITED", "CLAIMED", "REVOKED", "FAILED", "PENDING", "QUEUED", "ISSUED"]
    arranged = await insert_batch(owner_pool, states=states, batch_state="IN_PROGRESS")
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    response = await batches_stub.ResendInvitations(
        batches_service_pb2.ResendInvitationsRequest(name=f"batches/{arranged.batch_id}"),
        metadata=md,
    )
    counts = (
        response.resent_count,
        response.claimed_count,
        response.revoked_count,
        response.failed_count,
        response.in_progress_count,
        response.busy_count,
    )
    assert counts == (1, 1, 1, 1, 3, 0)
    rows = await owner_pool.fetch(
        "SELECT id, state FROM records WHERE batch_id = $1", arranged.batch_id
    )
    assert {r["id"]: r["state"] for r in rows}[arranged.record_ids[0]] == "PENDING"


async def test_a_cancelled_batch_is_a_failed_precondition(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    # A record still PENDING: a batch whose records are all finished cannot be cancelled.
    arranged = await insert_batch(
        owner_pool, states=["INVITED", "PENDING"], batch_state="IN_PROGRESS"
    )
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    name = f"batches/{arranged.batch_id}"
    cancelled = await batches_stub.CancelBatch(
        batches_service_pb2.CancelBatchRequest(name=name), metadata=md
    )
    assert cancelled.state == batch_pb2.BATCH_STATE_CANCELLED
    details = await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(name=name), metadata=md
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert details.info.reason == "BATCH_CANCELLED"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 1, "CANCELLED": 1}


async def test_another_tenants_batch_or_record_is_not_found(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    mine = await insert_batch(owner_pool, states=["INVITED"], batch_state="COMPLETED")
    theirs = await insert_batch(owner_pool, states=["INVITED"], batch_state="COMPLETED")
    md = bearer(settings, mine.tenant_id, "root", ["org_admin"])
    their_batch = await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(name=f"batches/{theirs.batch_id}"),
            metadata=md,
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert their_batch.info.reason == "BATCH_NOT_FOUND"
    their_record = await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(
                name=f"batches/{mine.batch_id}",
                record_ids=[str(mine.record_ids[0]), str(theirs.record_ids[0])],
            ),
            metadata=md,
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert their_record.info.reason == "RECORD_NOT_FOUND"
    assert str(theirs.record_ids[0]) in their_record.status.message
    # Nothing was resent, not even the caller's own record named beside it.
    assert await record_states(owner_pool, mine.batch_id) == {"INVITED": 1}
    assert await record_states(owner_pool, theirs.batch_id) == {"INVITED": 1}


async def test_an_issuer_may_not_resend_in_a_batch_of_another_creator(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=["INVITED"], creator="someone-else")
    md = bearer(settings, arranged.tenant_id, "me", ["issuer"])
    await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(name=f"batches/{arranged.batch_id}"),
            metadata=md,
        ),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_bad_names_ids_and_request_ids_are_named_field_by_field(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=["INVITED"], batch_state="COMPLETED")
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    bad_name = await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(name="batches/nope"), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_name.fields == ["name"]
    bad_input = await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(
                name=f"batches/{arranged.batch_id}",
                record_ids=[str(arranged.record_ids[0]), "not-a-uuid"],
                request_id="r" * 201,
            ),
            metadata=md,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_input.fields == ["record_ids[1]", "request_id"]
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 1}


async def test_a_request_id_names_one_batch(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    first = await insert_batch(owner_pool, states=["INVITED"], batch_state="COMPLETED")
    second = await insert_batch(
        owner_pool, first.tenant_id, states=["INVITED"], batch_state="COMPLETED"
    )
    md = bearer(settings, first.tenant_id, "root", ["org_admin"])
    done = await batches_stub.ResendInvitations(
        batches_service_pb2.ResendInvitationsRequest(
            name=f"batches/{first.batch_id}", request_id="once"
        ),
        metadata=md,
    )
    assert done.resent_count == 1
    reused = await fails(
        batches_stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(
                name=f"batches/{second.batch_id}", request_id="once"
            ),
            metadata=md,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reused.fields == ["request_id"] and reused.info.reason == "REQUEST_ID_REUSED"
    assert await record_states(owner_pool, second.batch_id) == {"INVITED": 1}


async def test_a_record_another_transaction_holds_is_counted_busy_not_waited_for(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(
        owner_pool, states=["INVITED", "INVITED"], batch_state="COMPLETED"
    )
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    held, free = arranged.record_ids
    async with owner_pool.acquire() as conn, conn.transaction():
        # As a worker's issue transaction of a redelivered job holds it.
        await conn.execute("SELECT 1 FROM records WHERE id = $1 FOR UPDATE", held)
        response = await asyncio.wait_for(
            batches_stub.ResendInvitations(
                batches_service_pb2.ResendInvitationsRequest(name=f"batches/{arranged.batch_id}"),
                metadata=md,
            ),
            timeout=10,
        )
    assert (response.resent_count, response.busy_count) == (1, 1)
    rows = await owner_pool.fetch(
        "SELECT id, state FROM records WHERE batch_id = $1", arranged.batch_id
    )
    assert {r["id"]: r["state"] for r in rows} == {held: "INVITED", free: "PENDING"}
