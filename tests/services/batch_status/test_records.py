"""ListRecords: the report's rows as typed pages, filtered by state, scoped to the batch."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from services.batch_status.records import parse_record_filter
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.grpc import bearer, error_details
from tests.services.batch_status.test_report import add_credential

STATES = ["INVITED", "FAILED", "QUEUED"] * 5
ERRORS: list[tuple[str | None, str | None]] = [
    ("SMTP_REJECTED", "mailbox full") if s == "FAILED" else (None, None) for s in STATES
]


async def list_all(stub: Any, md: Any, parent: str, page_size: int, filter_: str = "") -> list[Any]:
    records: list[Any] = []
    token = ""
    while True:
        page = await stub.ListRecords(
            batches_service_pb2.ListRecordsRequest(
                parent=parent, page_size=page_size, page_token=token, filter=filter_
            ),
            metadata=md,
        )
        assert len(page.records) <= page_size
        records.extend(page.records)
        token = page.next_page_token
        if not token:
            return records


async def test_pages_in_row_order_with_the_reports_fields(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=STATES, errors=ERRORS
    )
    certificate_id = "Cert_" + uuid.uuid4().hex
    credential_id = await add_credential(owner_pool, arranged, 1, certificate_id)
    md = bearer(settings, tenant, "ana", ["issuer"])
    parent = f"batches/{arranged.batch_id}"

    records = await list_all(batches_stub, md, parent, 4)
    assert [r.row_number for r in records] == list(range(1, 16))
    assert [r.name for r in records] == [f"{parent}/records/{i}" for i in arranged.record_ids]
    first, second = records[0], records[1]
    assert first.state == batch_pb2.RECORD_STATE_INVITED
    assert first.credential_id == str(credential_id)
    assert first.certificate_uri == f"{settings.public_url.rstrip('/')}/c/{certificate_id}"
    assert first.email == "holder1@example.org" and first.phone.startswith("+")
    assert first.HasField("create_time") and first.HasField("update_time")
    assert not first.HasField("revoke_time") and not first.error_code
    assert second.state == batch_pb2.RECORD_STATE_FAILED
    assert (second.error_code, second.error_message) == ("SMTP_REJECTED", "mailbox full")
    assert second.credential_id == "" and second.certificate_uri == ""

    failed_or_queued = await list_all(
        batches_stub,
        md,
        parent,
        3,
        "state = RECORD_STATE_FAILED OR state = RECORD_STATE_QUEUED",
    )
    assert [r.row_number for r in failed_or_queued] == [
        n for n in range(1, 16) if STATES[n - 1] != "INVITED"
    ]
    only_failed = await list_all(batches_stub, md, parent, 50, "state=RECORD_STATE_FAILED")
    assert {r.state for r in only_failed} == {batch_pb2.RECORD_STATE_FAILED}
    assert len(only_failed) == 5


async def test_another_tenants_batch_is_not_found(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await insert_batch(owner_pool, mine, await insert_schema(owner_pool, mine), creator="ana")
    other = await insert_batch(
        owner_pool, theirs, await insert_schema(owner_pool, theirs), creator="ana"
    )
    md = bearer(settings, mine, "root", ["org_admin"])
    for batch_id in (other.batch_id, uuid.uuid4()):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await batches_stub.ListRecords(
                batches_service_pb2.ListRecordsRequest(parent=f"batches/{batch_id}"), metadata=md
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert caught.value.details() == f"batch batches/{batch_id} not found"


async def test_a_token_is_bound_to_its_batch_and_filter(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    one = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 3)
    two = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 3)
    md = bearer(settings, tenant, "root", ["org_admin"])
    page = await batches_stub.ListRecords(
        batches_service_pb2.ListRecordsRequest(parent=f"batches/{one.batch_id}", page_size=1),
        metadata=md,
    )
    assert page.next_page_token
    for parent, filter_ in (
        (f"batches/{two.batch_id}", ""),
        (f"batches/{one.batch_id}", "state = RECORD_STATE_QUEUED"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await batches_stub.ListRecords(
                batches_service_pb2.ListRecordsRequest(
                    parent=parent, page_token=page.next_page_token, filter=filter_
                ),
                metadata=md,
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_request = error_details(caught.value).bad_request
        assert bad_request is not None
        assert [v.field for v in bad_request.field_violations] == ["page_token"]


@pytest.mark.parametrize(
    ("parent", "filter_", "field"),
    [
        ("batches/nope", "", "parent"),
        ("", "", "parent"),
        (f"batches/{uuid.uuid4()}", "state = RECORD_STATE_LOST", "filter"),
        (f"batches/{uuid.uuid4()}", "state = RECORD_STATE_FAILED AND state = FAILED", "filter"),
        (f"batches/{uuid.uuid4()}", "email = x", "filter"),
    ],
)
async def test_bad_requests_name_their_field(
    batches_stub: Any, settings: Settings, parent: str, filter_: str, field: str
) -> None:
    md = bearer(settings, uuid.uuid4(), "root", ["org_admin"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batches_stub.ListRecords(
            batches_service_pb2.ListRecordsRequest(parent=parent, filter=filter_), metadata=md
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_request = error_details(caught.value).bad_request
    assert bad_request is not None
    assert [v.field for v in bad_request.field_violations] == [field]


def test_filter_spellings() -> None:
    assert parse_record_filter("") == frozenset()
    assert parse_record_filter("  state = RECORD_STATE_FAILED  ") == {"FAILED"}
    assert parse_record_filter("state=failed OR state = RECORD_STATE_REVOKED") == {
        "FAILED",
        "REVOKED",
    }
