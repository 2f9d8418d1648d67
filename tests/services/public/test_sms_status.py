"""``POST /sms/status``: signed status callbacks recorded on their record, forged ones
refused, as the public endpoints' role against the real PostgreSQL."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from credbatch.delivery import twilio
from tests.fixtures.issuance import Arranged, PublicServer, arrange_batch

TOKEN = "dev"  # the public_server fixture's account token


async def _sent_sms(owner_pool: asyncpg.Pool) -> tuple[Arranged, dict[uuid.UUID, str]]:
    arranged = await arrange_batch(owner_pool, 2, mediums=("SMS",), certificate=False)
    sids = {r: "SM" + uuid.uuid4().hex for r in arranged.record_ids}
    await owner_pool.execute(
        "UPDATE records SET state = 'ISSUED' WHERE batch_id = $1", arranged.batch_id
    )
    for record, sid in sids.items():
        await owner_pool.execute(
            "UPDATE records SET state = 'INVITED', sms_sent_at = now() WHERE id = $1", record
        )
        await owner_pool.execute(
            "INSERT INTO record_sends (tenant_id, record_id, medium, message_id)"
            " SELECT tenant_id, id, 'SMS', $2 FROM records WHERE id = $1",
            record,
            sid,
        )
    return arranged, sids


async def _post(
    server: PublicServer, params: dict[str, str], signature: str | None = None
) -> httpx.Response:
    url = server.url + twilio.STATUS_PATH
    headers = {twilio.SIGNATURE_HEADER: signature or twilio.signature(TOKEN, url, params)}
    async with httpx.AsyncClient() as client:
        return await client.post(url, data=params, headers=headers)


async def _delivery(owner_pool: asyncpg.Pool, record: uuid.UUID) -> tuple[str, str | None]:
    row = await owner_pool.fetchrow(
        "SELECT sms_delivery, sms_delivery_code FROM records WHERE id = $1", record
    )
    return row["sms_delivery"], row["sms_delivery_code"]


def _params(sid: str, status: str, error: str | None = None) -> dict[str, str]:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "ACdev"}
    if error:
        params["ErrorCode"] = error
    return params


async def test_signed_callbacks_are_recorded_on_their_record(
    public_server: PublicServer, owner_pool: asyncpg.Pool
) -> None:
    arranged, sids = await _sent_sms(owner_pool)
    first, second = arranged.record_ids
    assert (
        await _post(public_server, _params(sids[first], "undelivered", "30005"))
    ).status_code == 200
    assert (await _post(public_server, _params(sids[second], "delivered"))).status_code == 200
    assert await _delivery(owner_pool, first) == ("BOUNCED", "30005")
    assert await _delivery(owner_pool, second) == ("DELIVERED", None)
    # A provider's failure after its delivered receipt outranks it.
    assert (await _post(public_server, _params(sids[second], "failed", "30008"))).status_code == 200
    assert await _delivery(owner_pool, second) == ("FAILED", "30008")


async def test_intermediate_statuses_record_nothing(
    public_server: PublicServer, owner_pool: asyncpg.Pool
) -> None:
    arranged, sids = await _sent_sms(owner_pool)
    record = arranged.record_ids[0]
    for status in ("queued", "sending", "sent"):
        assert (await _post(public_server, _params(sids[record], status))).status_code == 200
    assert await _delivery(owner_pool, record) == ("ACCEPTED", None)


async def test_forged_callbacks_are_refused(
    public_server: PublicServer, owner_pool: asyncpg.Pool
) -> None:
    arranged, sids = await _sent_sms(owner_pool)
    record = arranged.record_ids[0]
    params = _params(sids[record], "failed", "30003")
    url = public_server.url + twilio.STATUS_PATH
    forgeries = [
        twilio.signature("not-the-token", url, params),
        # Signed for other parameters (a delivered receipt), replayed with these.
        twilio.signature(TOKEN, url, _params(sids[record], "delivered")),
        # Signed for another URL.
        twilio.signature(TOKEN, "https://elsewhere.example/sms/status", params),
        "",
    ]
    for signature in forgeries:
        response = await _post(public_server, params, signature or "x")
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(url, data=params)
    assert unsigned.status_code == 403
    assert await _delivery(owner_pool, record) == ("ACCEPTED", None)


async def test_an_unknown_message_is_404(public_server: PublicServer) -> None:
    response = await _post(public_server, _params("SM" + uuid.uuid4().hex, "delivered"))
    assert response.status_code == 404


async def test_an_oversized_callback_is_413(public_server: PublicServer) -> None:
    params = _params("SM1", "delivered") | {"Body": "x" * (20 * 1024)}
    assert (await _post(public_server, params)).status_code == 413


async def test_a_callback_for_a_revoked_record_is_recorded_and_the_record_stays_revoked(
    public_server: PublicServer, owner_pool: asyncpg.Pool
) -> None:
    arranged, sids = await _sent_sms(owner_pool)
    record = arranged.record_ids[0]
    await owner_pool.execute(
        "UPDATE records SET state = 'REVOKED', revoked_at = now(), revoke_reason = 'test'"
        " WHERE id = $1",
        record,
    )
    for _ in range(2):  # the provider posting it twice changes nothing more
        response = await _post(public_server, _params(sids[record], "undelivered", "30005"))
        assert response.status_code == 200
    assert await _delivery(owner_pool, record) == ("BOUNCED", "30005")
    assert await owner_pool.fetchval("SELECT state FROM records WHERE id = $1", record) == "REVOKED"


async def test_a_callback_for_a_purged_record_is_answered_and_records_nothing(
    public_server: PublicServer, owner_pool: asyncpg.Pool
) -> None:
    arranged, sids = await _sent_sms(owner_pool)
    record = arranged.record_ids[0]
    assert await owner_pool.fetchval(
        "SELECT records_erase($1, $2, 'RETENTION')", arranged.tenant_id, [record]
    )
    before = await owner_pool.fetchrow("SELECT * FROM records WHERE id = $1", record)
    # 200, not 404: the provider has nothing to try again.
    for _ in range(2):
        response = await _post(public_server, _params(sids[record], "failed", "30003"))
        assert response.status_code == 200
    after = await owner_pool.fetchrow("SELECT * FROM records WHERE id = $1", record)
    assert dict(after) == dict(before)
    assert (after["phone"], after["sms_delivery"]) == (None, "ACCEPTED")
