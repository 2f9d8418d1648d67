"""FAILED records, retries and dead letters are logged per batch, in the upload's trace,
with ids and codes and no holder data."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from credbatch.config import Settings
from credbatch.telemetry import tracer
from tests.fixtures.issuance import (
    Arranged,
    Sinks,
    arrange_batch,
    publish_jobs,
    publish_raw,
    running_worker,
    wait_for_batch,
)
from tests.fixtures.logs import LogLines, json_logs


def _ours(logs: LogLines) -> str:
    """Our lines: the test process also holds the SMTP sink, whose library logs addresses."""
    return "\n".join(
        json.dumps(e) for e in logs.entries() if e["logger"].startswith(("workers.", "credbatch."))
    )


def _no_holder_data(logs: LogLines, arranged: Arranged) -> None:
    ours = _ours(logs)
    assert "records FAILED" in ours or "to be retried" in ours
    for row in arranged.rows:
        assert row["email"] not in ours
        assert row["phone"] not in ours
        assert row["attributes"]["full_name"] not in ours


async def test_retries_failed_records_and_dead_letters_are_logged_in_the_uploads_trace(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    spans: InMemorySpanExporter,
) -> None:
    arranged = await arrange_batch(owner_pool, 3, mediums=("SMS",), certificate=False)
    sinks.sms.state.fail_status = 503
    with tracer("test").start_as_current_span("upload") as upload:
        await publish_jobs(worker_settings, arranged)
    trace_id = f"{upload.get_span_context().trace_id:032x}"
    with json_logs("issuance") as logs:
        async with running_worker(worker_settings):
            assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    ids = {"tenant_id": str(arranged.tenant_id), "batch_id": str(arranged.batch_id)}
    records = sorted(str(r) for r in arranged.record_ids)

    retried = logs.containing("records to be retried")
    # Attempts 1 .. max_attempts - 1 fail and are retried; the last one fails the records.
    assert sum(e["count"] for e in retried) == 3 * (worker_settings.max_attempts - 1)
    for entry in retried:
        assert entry["level"] == "INFO"
        assert {k: entry[k] for k in ids} == ids
        assert entry["trace_id"] == trace_id
        assert entry["error_codes"] == {"SMS_TEMPORARY_FAILURE": entry["count"]}
        assert f"tenant {arranged.tenant_id} batch {arranged.batch_id}" in entry["message"]
    republished = logs.containing("sent to their delay queues")
    assert sum(e["count"] for e in republished) == 3 * (worker_settings.max_attempts - 1)
    assert {e["trace_id"] for e in republished} == {trace_id}

    failed = logs.containing("records FAILED")
    assert [e["level"] for e in failed] == ["WARNING"] * len(failed)
    assert sum(e["count"] for e in failed) == 3
    assert sorted(r for e in failed for r in e["record_ids"]) == records
    assert {e["trace_id"] for e in failed} == {trace_id}
    assert all(e["attempts"] == [worker_settings.max_attempts] for e in failed)
    assert "SMS_TEMPORARY_FAILURE x" in failed[0]["message"]

    dead = logs.containing("jobs dead-lettered")
    assert sum(e["count"] for e in dead) == 3
    assert {(e["level"], e["batch_id"], e["trace_id"]) for e in dead} == {
        ("WARNING", str(arranged.batch_id), trace_id)
    }
    _no_holder_data(logs, arranged)
    # The provider's reply is stored on the record, never logged.
    assert "Injected failure" not in _ours(logs)


async def test_a_permanent_failure_is_logged_once_and_not_as_a_retry(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 4, mediums=("EMAIL",), certificate=False)
    sinks.smtp.handler.refuse[arranged.rows[1]["email"]] = "Mailbox does not exist"
    await publish_jobs(worker_settings, arranged)
    with json_logs("issuance") as logs:
        async with running_worker(worker_settings):
            assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    (failed,) = logs.containing("records FAILED")
    assert (failed["count"], failed["error_codes"]) == (1, {"SMTP_REJECTED": 1})
    assert failed["record_ids"] == [str(arranged.record_ids[1])]
    assert logs.containing("to be retried") == []
    assert logs.containing("dead-lettered") == []
    _no_holder_data(logs, arranged)
    assert "Mailbox does not exist" not in _ours(logs)


async def test_a_malformed_job_is_logged_by_its_message_id(
    worker_settings: Settings, sinks: Sinks
) -> None:
    with json_logs("issuance") as logs:
        async with running_worker(worker_settings):
            await publish_raw(worker_settings, b"\xff\x00 not a protobuf")
            for _ in range(200):
                if logs.containing("malformed jobs dead-lettered"):
                    break
                await asyncio.sleep(0.05)
    (entry,) = logs.containing("malformed jobs dead-lettered")
    assert (entry["level"], entry["count"]) == ("WARNING", 1)


async def test_records_of_a_batch_that_cannot_be_issued_are_logged_failed(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 2, mediums=("EMAIL",), certificate=True)
    # The schema asks for a certificate; the batch names no template for it.
    await owner_pool.execute(
        "UPDATE batches SET certificate_template_id = NULL WHERE id = $1", arranged.batch_id
    )
    await publish_jobs(worker_settings, arranged)
    with json_logs("issuance") as logs:
        async with running_worker(worker_settings):
            assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    (entry,) = logs.containing("records FAILED: the batch cannot be issued")
    assert (entry["level"], entry["count"]) == ("WARNING", 2)
    assert entry["batch_id"] == str(arranged.batch_id)
    assert entry["error_codes"] == {"CERTIFICATE_TEMPLATE_MISSING": 2}
    assert sorted(entry["record_ids"]) == sorted(str(r) for r in arranged.record_ids)
    _no_holder_data(logs, arranged)
