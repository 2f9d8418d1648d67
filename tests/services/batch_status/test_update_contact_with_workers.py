"""UpdateRecordContact against the real issuance worker, relay, public endpoints and sinks: the
corrected holder gets a new invitation (new claim link, offer and code), what reached the old
address answers 410, and the credential is the one issued before."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import httpx
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from tests.fixtures.grpc import bearer
from tests.fixtures.issuance import (
    PublicServer,
    Sinks,
    publish_jobs,
    running_worker,
    wait_for_batch,
)
from tests.services.batch_status.test_commands_with_workers import (
    running_relay,
    wait_until_drained,
)
from tests.services.batch_status.test_resend import (
    arrange_invitable,
    mails_to,
    offer_path,
    offer_urls,
    sms_codes,
    token,
    wait_for_mails,
)

_CLAIM = re.compile(r"/claim/\S+")


async def test_a_corrected_address_gets_a_new_link_and_the_old_one_is_gone(
    batches_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    arranged = await arrange_invitable(owner_pool, 2, mediums=("EMAIL", "SMS"))
    tenant = arranged.tenant_id
    typo, other = arranged.rows
    record_id = arranged.record_ids[0]
    md = bearer(settings, tenant, "root", ["org_admin"])
    await publish_jobs(worker_settings, arranged)
    client = httpx.AsyncClient(base_url=public_server.url)
    async with client, running_worker(worker_settings), running_relay(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
        credential_before = await owner_pool.fetchval(
            "SELECT id FROM credentials WHERE record_id = $1", record_id
        )
        [old_offer] = offer_urls(sinks, typo["email"])
        [old_code] = sms_codes(sinks, typo["phone"])
        [old_claim_link] = _CLAIM.findall(mails_to(sinks, typo["email"])[0])

        # Unique: the sinks are shared with other tests.
        corrected = f"fixed-{uuid.uuid4().hex[:12]}@example.org"
        response = await batches_stub.UpdateRecordContact(
            batches_service_pb2.UpdateRecordContactRequest(
                name=f"batches/{arranged.batch_id}/records/{record_id}",
                email=corrected,
                update_mask=field_mask_pb2.FieldMask(paths=["email"]),
            ),
            metadata=md,
        )
        assert list(response.changed_fields) == ["email"]
        assert response.record_state == batch_pb2.RECORD_STATE_PENDING

        await wait_for_mails(sinks, corrected, 1)
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
        await wait_until_drained(worker_settings.amqp_url)

        # The old address got one mail, the new one one; the phone (unchanged) the new code.
        assert len(mails_to(sinks, typo["email"])) == 1
        assert len(mails_to(sinks, corrected)) == 1
        assert len(mails_to(sinks, other["email"])) == 1
        [new_offer] = offer_urls(sinks, corrected)
        [new_claim_link] = _CLAIM.findall(mails_to(sinks, corrected)[0])
        first_code, new_code = sms_codes(sinks, typo["phone"])
        assert first_code == old_code
        assert new_offer != old_offer and new_claim_link != old_claim_link

        # What went to the old address is gone, the claim page and its download alike.
        assert (await client.get(old_claim_link)).status_code == 410
        download = await client.get(old_claim_link + "/credential")
        assert download.status_code == 410, download.text
        assert (await client.get(offer_path(old_offer, public_server.url))).status_code == 410
        refused = await token(client, tenant, old_offer, old_code)
        assert refused.status_code == 400
        # The new link shows the new offer, which works with the new code.
        page = await client.get(new_claim_link)
        assert page.status_code == 200, page.text
        exchanged = await token(client, tenant, new_offer, new_code)
        assert exchanged.status_code == 200, exchanged.text

    # One grant, one credential: the same one offered again.
    credentials = await owner_pool.fetch(
        "SELECT id FROM credentials WHERE record_id = $1", record_id
    )
    assert [c["id"] for c in credentials] == [credential_before]
    row = await owner_pool.fetchrow(
        "SELECT state, email, contact_updated_at FROM records WHERE id = $1", record_id
    )
    assert (row["state"], row["email"]) == ("INVITED", corrected)
    assert row["contact_updated_at"] is not None
