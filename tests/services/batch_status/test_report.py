"""DownloadBatchReport: the right rows with their errors, issued links, escaped formulas and
phone numbers kept as they are."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import UTC
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from credbatch.batches.model import RecordState
from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from credbatch.tenancy import TenantScope
from services.batch_status.report import (
    COLUMNS,
    crlf_records,
    escape_cell,
    escape_cell_sql,
    report_chunks,
)
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
        ("2", "RECORD_STATE_FAILED", "SMTP_REJECTED", "'+mailbox unavailable"),
        ("4", "RECORD_STATE_FAILED", "INVALID_PHONE", "'-1 is not a phone"),
        ("6", "RECORD_STATE_FAILED", "SIGNING_FAILED", "'\tkey unavailable"),
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


async def test_credentials_certificates_and_reminders_of_each_batch_only(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    """Of two batches of one tenant, only the first has a credential, a certificate and a
    reminder row: each report shows its own records' and no other's, whichever pages."""
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    issued = await insert_batch(owner_pool, tenant, schema, states=["INVITED"] * 5)
    other = await insert_batch(owner_pool, tenant, schema, states=["INVITED"] * 5)
    certificate = "Cert_" + uuid.uuid4().hex
    credential_id = await add_credential(owner_pool, issued, 4, certificate)
    await owner_pool.execute(
        "INSERT INTO record_reminders (tenant_id, record_id, batch_id, step, sent)"
        " VALUES ($1, $2, $3, 2, 1)",
        tenant,
        issued.record_ids[1],
        issued.batch_id,
    )
    scope = TenantScope(tenant, "root", frozenset({"org_admin"}))

    async def report(batch_id: uuid.UUID, page_rows: int) -> list[dict[str, str]]:
        chunks = [
            c
            async for c in report_chunks(
                app_pool, scope, batch_id, [], "http://x", page_rows=page_rows
            )
        ]
        return list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))

    for page_rows in (2, 10):
        rows = await report(issued.batch_id, page_rows)
        assert [(r["credential_id"], r["cred_url"], r["reminders_sent"]) for r in rows] == [
            ("", "", ""),
            ("", "", "1"),
            ("", "", ""),
            (str(credential_id), f"http://x/c/{certificate}", ""),
            ("", "", ""),
        ]
        rows = await report(other.batch_id, page_rows)
        assert [(r["credential_id"], r["cred_url"], r["reminders_sent"]) for r in rows] == [
            ("", "", "")
        ] * 5


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


async def test_every_chunk_is_whole_rows_even_with_multibyte_values(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    # Two- to four-byte UTF-8 sequences, and a line break inside a quoted cell.
    emails = [f"{'çé漢字🎓' * (i % 5 + 1)}{i}@example.org" for i in range(60)]
    errors: list[tuple[str | None, str | None]] = [
        ("SMTP_REJECTED", f"boîte pleine 📫\nligne {i}") for i in range(60)
    ]
    arranged = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        states=["FAILED"] * 60,
        emails=emails,
        errors=errors,
    )
    scope = TenantScope(tenant, "root", frozenset({"org_admin"}))
    chunks = [
        c
        async for c in report_chunks(
            app_pool, scope, arranged.batch_id, [], "http://x", page_rows=9, chunk_bytes=400
        )
    ]
    assert len(chunks) > 10 and all(len(c) <= 400 for c in chunks)
    rows: list[dict[str, str]] = []
    for index, chunk in enumerate(chunks):
        # Each chunk decodes and parses on its own: no UTF-8 sequence or row is split.
        text = chunk.decode()
        assert text.endswith("\r\n")
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        if index == 0:
            assert tuple(parsed.pop(0)) == COLUMNS
        rows.extend(dict(zip(COLUMNS, cells, strict=True)) for cells in parsed)
    assert [r["email"] for r in rows] == emails
    assert [r["error_message"] for r in rows] == [m for _, m in errors]
    assert {r["state"] for r in rows} == {"RECORD_STATE_FAILED"}


async def test_a_row_longer_than_a_chunk_comes_alone(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    errors: list[tuple[str | None, str | None]] = [
        (None, None),
        ("SMTP_REJECTED", "é" * 300),
        (None, None),
    ]
    arranged = await insert_batch(
        owner_pool,
        tenant,
        schema,
        creator="ana",
        states=["INVITED", "FAILED", "INVITED"],
        errors=errors,
    )
    scope = TenantScope(tenant, "root", frozenset({"org_admin"}))
    chunks = [
        c
        async for c in report_chunks(
            app_pool, scope, arranged.batch_id, [], "http://x", chunk_bytes=200
        )
    ]
    long_rows = [c for c in chunks if len(c) > 200]
    assert len(long_rows) == 1 and long_rows[0].decode().startswith("2,")
    assert all(c.decode().endswith("\r\n") for c in chunks)


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


def _corpus() -> list[str]:
    """Cells for the SQL escaping: every edge of the rule, then random mixes of its characters."""
    fixed = [
        "=1+1", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "+", "-", "+1 415 555 0123", "-1e5",
        "+\u0663", "-5\n", "+14155550123", "-5", "-3.5", "+.5", "-7.", "+.", "-..5", "1+1",
        "'quoted", "ana@example.org", "x", " =1", "\n=1",
    ]  # fmt: skip
    alphabet = "+-=@.0123456789\t\r\n ,\"'a\u0663\u00e9"
    rng = random.Random(27)
    mixes = ["".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(3000)]
    return fixed + mixes


async def test_the_page_query_escapes_cells_as_escape_cell_does(app_pool: asyncpg.Pool) -> None:
    values = _corpus()
    async with app_pool.acquire() as conn:
        escaped = await conn.fetchval(
            f"SELECT array_agg({escape_cell_sql('v')} ORDER BY n)"
            " FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n)",
            values,
        )
        empty = await conn.fetchval("SELECT " + escape_cell_sql("''::text"))
    assert escaped == [escape_cell(v) for v in values]
    assert empty is None  # written unquoted, as csv writes an empty cell


def _python_csv(rows: list[list[object]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return text.getvalue().encode()


async def test_the_bytes_are_what_python_csv_writes_across_pages(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    messages: list[str | None] = [
        'line one\nline "two"',
        "a, b and c",
        None,
        '"quoted", then\r\nmore',
        "=cmd",
        "",
        '"',
        "plain",
    ] * 3
    errors: list[tuple[str | None, str | None]] = [
        (None if m is None else "SMTP_REJECTED", m) for m in messages
    ]
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, states=["FAILED"] * len(messages), errors=errors
    )
    async with owner_pool.acquire() as conn:
        # A time on a whole second: isoformat() then writes no fraction.
        await conn.execute(
            "UPDATE records SET updated_at = '2026-01-02 03:04:05+00' WHERE id = $1",
            arranged.record_ids[0],
        )
        stored = await conn.fetch(
            "SELECT row_number, email, phone, state, error_code, error_message, updated_at, id"
            " FROM records WHERE batch_id = $1 ORDER BY row_number",
            arranged.batch_id,
        )
    expected = _python_csv(
        [
            [
                r["row_number"],
                escape_cell(r["email"] or ""),
                escape_cell(r["phone"] or ""),
                "RECORD_STATE_" + r["state"],
                "",  # nothing sent: no delivery state on either channel, no code
                "",
                "",
                "",
                "",
                escape_cell(r["error_code"] or ""),
                escape_cell(r["error_message"] or ""),
                r["updated_at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
                str(r["id"]),
                "",
                "",  # not purged
                "",
                "",  # no reminder schedule
            ]
            for r in stored
        ]
    )
    scope = TenantScope(tenant, "root", frozenset({"org_admin"}))
    for page_rows in (1, 3, 7, 100):
        chunks = [
            c
            async for c in report_chunks(
                app_pool, scope, arranged.batch_id, [], "http://x", page_rows=page_rows
            )
        ]
        assert b"".join(chunks) == expected, page_rows


def test_record_ends_are_found_outside_quotes() -> None:
    page = b'1,a,b\n2,"x\ny",c\n3,"q""\n",z\n'
    assert crlf_records(page) == b'1,a,b\r\n2,"x\ny",c\r\n3,"q""\n",z\r\n'
    assert crlf_records(b"1,a\n2,b\n") == b"1,a\r\n2,b\r\n"
    assert crlf_records(b"") == b""


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
    assert [r["state"] for r in rows] == ["RECORD_STATE_" + s for s in states]
    assert [r["error_code"] for r in rows] == [e[0] or "" for e in ERRORS]
    assert rows[0]["credential_id"] == str(credential_id)
    assert rows[0]["cred_url"] == ""
