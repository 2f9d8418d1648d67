"""DownloadBatchReport: the right rows with their errors, issued links, escaped formulas and
phone numbers kept as they are."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from credbatch.batches.model import RecordState
from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from credbatch.tenancy import TenantScope
from services.batch_status.report import COLUMNS, escape_cell, report_chunks
from tests.fixtures.batches import ArrangedBatch, insert_batch, insert_schema
from tests.fixtures.grpc import bearer

STATES = ["INVITED", "FAILED", "INVITED", "FAILED", "QUEUED", "FAILED"]
EMAILS = [
    "ok@example.org",
    '=HYPERLINK("x")@evil.org',
    "c@example.org",
    "@sum@x.org",
    "e@example.org",
    "f@example.org",
]
ERRORS: list[tuple[str | None, str | None]] = [
    (None, None),
    ("SMTP_REJECTED", "+mailbox unavailable"),
    (None, None),
    ("INVALID_PHONE", "-1 is not a phone"),
    (None, None),
    ("SIGNING_FAILED", "\tkey unavailable"),
]
CERTIFICATE_ID = "Cert_" + uuid.uuid4().hex


async def add_credential(
    owner: asyncpg.Pool, arranged: ArrangedBatch, row: int, certificate_id: str = CERTIFICATE_ID
) -> uuid.UUID:
    """A credential and certificate for one record, as a worker would write them."""
    tenant, record_id = arranged.tenant_id, arranged.record_ids[row - 1]
    kid, list_id, credential_id = f"k-{uuid.uuid4()}", uuid.uuid4(), uuid.uuid4()
    async with owner.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO signing_keys (tenant_id, kid, alg, public_jwk, private_key_enc, nonce)"
            " VALUES ($1, $2, 'ES256', $3, $4, $5)",
            tenant,
            kid,
            {"kty": "EC"},
            b"sealed",
            b"\0" * 12,
        )
        await conn.execute(
            "INSERT INTO status_lists (tenant_id, id, size, bits) VALUES ($1, $2, 8, $3)",
            tenant,
            list_id,
            b"\0",
        )
        await conn.execute(
            "INSERT INTO credentials (tenant_id, id, record_id, batch_id, kid, status_list_id,"
            " status_index, sd_jwt, claim_token) VALUES ($1, $2, $3, $4, $5, $6, 0, 'jwt~', $7)",
            tenant,
            credential_id,
            record_id,
            arranged.batch_id,
            kid,
            list_id,
            uuid.uuid4().hex,
        )
        await conn.execute(
            "INSERT INTO certificates (tenant_id, id, record_id, pdf) VALUES ($1, $2, $3, $4)",
            tenant,
            certificate_id,
            record_id,
            b"%PDF-1.7",
        )
    return credential_id


async def download(
    stub: Any, md: Any, name: str, states: list[batch_pb2.RecordState]
) -> list[dict[str, str]]:
    chunks = [
        c.chunk
        async for c in stub.DownloadBatchReport(
            batches_service_pb2.DownloadBatchReportRequest(name=name, states=states), metadata=md
        )
    ]
    assert all(len(c) <= 1024 * 1024 for c in chunks)
    text = b"".join(chunks).decode()
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


async def test_failed_rows_with_their_errors(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=STATES, emails=EMAILS, errors=ERRORS
    )
    credential_id = await add_credential(owner_pool, arranged, 1)
    md = bearer(settings, tenant, "root", ["org_admin"])
    name = f"batches/{arranged.batch_id}"

    failed = await download(batches_stub, md, name, [batch_pb2.RECORD_STATE_FAILED])
    assert [(r["row_number"], r["state"], r["error_code"], r["error_message"]) for r in failed] == [
        ("2", "FAILED", "SMTP_REJECTED", "'+mailbox unavailable"),
        ("4", "FAILED", "INVALID_PHONE", "'-1 is not a phone"),
        ("6", "FAILED", "SIGNING_FAILED", "'\tkey unavailable"),
    ]
    assert failed[0]["email"] == '\'=HYPERLINK("x")@evil.org'
    assert failed[1]["email"] == "'@sum@x.org"
    # A phone number is a number to a spreadsheet, not a formula: kept as it is.
    assert all(r["phone"] == "+15005550006" for r in failed)
    assert all(r["credential_id"] == "" and r["cred_url"] == "" for r in failed)

    everything = await download(batches_stub, md, name, [])
    assert [r["row_number"] for r in everything] == ["1", "2", "3", "4", "5", "6"]
    first = everything[0]
    assert first["credential_id"] == str(credential_id)
    assert first["cred_url"] == f"{settings.public_url.rstrip('/')}/c/{CERTIFICATE_ID}"
    assert first["error_code"] == "" and first["updated_at"].endswith("Z")

    two_states = await download(
        batches_stub, md, name, [batch_pb2.RECORD_STATE_QUEUED, batch_pb2.RECORD_STATE_INVITED]
    )
    assert [r["row_number"] for r in two_states] == ["1", "3", "5"]


async def test_chunks_are_bounded_and_pages_join_seamlessly(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["INVITED", "FAILED"] * 50
    )
    scope = TenantScope(tenant, "root", frozenset({"org_admin"}))
    chunks = [
        c
        async for c in report_chunks(
            app_pool,
            scope,
            arranged.batch_id,
            [RecordState.FAILED],
            "http://x",
            page_rows=7,
            chunk_bytes=300,
        )
    ]
    assert all(len(c) <= 300 for c in chunks) and len(chunks) > 5
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert [int(r["row_number"]) for r in rows] == list(range(2, 101, 2))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIGNS = st.sampled_from("+-")
DIGITS = st.text("0123456789", min_size=1, max_size=20)


def test_escape_cell_examples() -> None:
    for dangerous in (
        "=1+1",
        "+1+2",
        "-2+3",
        "+SUM(A1)",
        "-cmd|' /C calc'!A0",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "+",
        "-",
        "+1 415 555 0123",
        "-1e5",
        "+\u0663",  # ARABIC-INDIC DIGIT THREE: no number to a spreadsheet
        "-5\n",
    ):
        assert escape_cell(dangerous) == "'" + dangerous, dangerous
    for harmless in ("+14155550123", "-5", "-3.5", "+.5", "-7.", "ana@example.org", "1+1", ""):
        assert escape_cell(harmless) == harmless, harmless
    assert escape_cell("'quoted") == "'quoted"


@given(st.text())
def test_escaping_only_ever_prepends_one_quote(value: str) -> None:
    assert escape_cell(value) in (value, "'" + value)


@given(st.text())
def test_a_cell_left_as_is_is_no_formula(value: str) -> None:
    if escape_cell(value) != value:
        return
    assert not value.startswith(("=", "@", "\t", "\r"))
    if value.startswith(("+", "-")):
        assert set(value[1:]) <= set("0123456789.")
        float(value)  # a number


@given(st.text().filter(lambda value: not value.startswith(FORMULA_STARTS)))
def test_text_not_starting_a_formula_is_kept(value: str) -> None:
    assert escape_cell(value) == value


@given(st.sampled_from("=@\t\r"), st.text())
def test_a_formula_start_is_always_escaped(first: str, rest: str) -> None:
    assert escape_cell(first + rest) == "'" + first + rest


@given(
    SIGNS,
    st.text("0123456789", max_size=5),
    st.characters(exclude_characters="0123456789."),
    st.text(),
)
def test_a_sign_before_anything_but_a_number_is_escaped(
    sign: str, digits: str, other: str, rest: str
) -> None:
    value = sign + digits + other + rest
    assert escape_cell(value) == "'" + value


@given(st.integers())
def test_integers_are_kept(number: int) -> None:
    for text in (str(number), f"{number:+d}"):
        assert escape_cell(text) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3))
def test_signed_decimals_are_kept(number: Decimal) -> None:
    text = f"{number:+f}"
    assert escape_cell(text) == text


@given(st.from_regex(r"\+[1-9][0-9]{1,14}", fullmatch=True), SIGNS, DIGITS)
def test_phone_numbers_and_signed_digits_are_kept(phone: str, sign: str, digits: str) -> None:
    assert escape_cell(phone) == phone
    assert escape_cell(sign + digits) == sign + digits


async def test_a_purged_batch_says_so_on_every_row(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    # Every record closed: a batch with a record still in flight waits for it.
    states = [s.replace("QUEUED", "CANCELLED") for s in STATES]
    arranged = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        states=states,
        emails=EMAILS,
        errors=ERRORS,
        batch_state="COMPLETED_WITH_ERRORS",
    )
    credential_id = await add_credential(owner_pool, arranged, 1, "Cert_" + uuid.uuid4().hex)
    await owner_pool.execute(
        "UPDATE batches SET completed_at = now() - interval '31 days' WHERE id = $1",
        arranged.batch_id,
    )
    while await janitor_pool.fetchrow("SELECT * FROM janitor_purge(30, 1000)"):
        pass
    md = bearer(settings, tenant, "root", ["org_admin"])

    rows = await download(batches_stub, md, f"batches/{arranged.batch_id}", [])

    assert [r["row_number"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert all(r["purge_reason"] == "RETENTION" and r["purged_at"].endswith("Z") for r in rows)
    assert all(r["email"] == r["phone"] == r["error_message"] == "" for r in rows)
    # The history stays: states, error codes, the credential's id; the certificate is gone.
    assert [r["state"] for r in rows] == states
    assert [r["error_code"] for r in rows] == [e[0] or "" for e in ERRORS]
    assert rows[0]["credential_id"] == str(credential_id)
    assert rows[0]["cred_url"] == ""
