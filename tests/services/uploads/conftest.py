"""Fixtures for UploadService tests: the real service on a real server and database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio

from credbatch.catalog import repository as catalog
from credbatch.catalog.model import CertificateTemplate, SchemaDraft
from credbatch.config import Settings
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.schema.model import Attribute, AttributeType
from credbatch.templating.certificate import CertificateLayout
from credbatch.tenancy import TenantScope, tenant_transaction
from services.uploads.main import service_specs
from tests.fixtures.grpc import RunningApp, StartApp, bearer

EMAIL = medium_pb2.MEDIUM_EMAIL
SMS = medium_pb2.MEDIUM_SMS

ATTRIBUTES = (
    Attribute("name", AttributeType.STRING, required=True),
    Attribute("age", AttributeType.INTEGER),
    Attribute("born", AttributeType.DATE),
    Attribute("score", AttributeType.NUMBER),
    Attribute("member", AttributeType.BOOLEAN),
    Attribute("level", AttributeType.ENUM, enum_values=("Gold", "Silver")),
    Attribute("site", AttributeType.URL),
)
HEADER = "email,phone,name,age,born,score,member,level,site"


@pytest.fixture(scope="session")
def upload_settings(settings: Settings) -> Settings:
    return settings.with_overrides(max_rows=50_000, max_bytes=8 * 1024 * 1024)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def uploads_app(
    start_app: StartApp, upload_settings: Settings, app_pool: asyncpg.Pool
) -> RunningApp:
    return await start_app(upload_settings, service_specs(upload_settings, app_pool))


@dataclass
class Tenant:
    """A fresh tenant with a schema (and one needing a certificate) and a caller."""

    settings: Settings
    tenant_id: uuid.UUID
    schema: str
    certificate_schema: str
    certificate_template: str
    stub: uploads_service_pb2_grpc.UploadServiceStub
    user: str = "alice"
    roles: tuple[str, ...] = ("issuer",)
    departments: tuple[str, ...] = ("sales", "hr")

    def metadata(self, **changes: object) -> tuple[tuple[str, str], ...]:
        return bearer(
            self.settings,
            self.tenant_id,
            str(changes.get("user", self.user)),
            changes.get("roles", self.roles),  # type: ignore[arg-type]
            changes.get("departments", self.departments),  # type: ignore[arg-type]
        )

    async def upload(
        self,
        content: bytes,
        *,
        chunk: int = 64 * 1024,
        mediums: Sequence[int] = (EMAIL, SMS),
        schema: str | None = None,
        metadata: tuple[tuple[str, str], ...] | None = None,
        **header: object,
    ) -> uploads_service_pb2.UploadBatchResponse:
        messages = [
            uploads_service_pb2.UploadBatchRequest(
                header=uploads_service_pb2.UploadBatchHeader(
                    schema=self.schema if schema is None else schema,
                    mediums=list(mediums),  # type: ignore[arg-type]
                    filename="holders.csv",
                    **header,  # type: ignore[arg-type]
                )
            ),
            *(
                uploads_service_pb2.UploadBatchRequest(chunk=content[i : i + chunk])
                for i in range(0, len(content), chunk)
            ),
        ]

        async def stream() -> AsyncIterator[uploads_service_pb2.UploadBatchRequest]:
            for message in messages:
                yield message

        call: Any = self.stub.UploadBatch(
            stream(),  # type: ignore[arg-type]
            metadata=metadata or self.metadata(),
        )
        response: uploads_service_pb2.UploadBatchResponse = await call
        return response


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(
    uploads_app: RunningApp, upload_settings: Settings, app_pool: asyncpg.Pool
) -> Tenant:
    tenant_id = uuid.uuid4()
    scope = TenantScope(tenant_id, "admin", frozenset({"org_admin"}))
    async with tenant_transaction(app_pool, scope) as conn:
        plain = await catalog.create_schema(conn, SchemaDraft("Membership", ATTRIBUTES), "admin")
        cert = await catalog.create_schema(
            conn,
            SchemaDraft(
                "Diploma",
                (Attribute("name", AttributeType.STRING, required=True),),
                requires_certificate=True,
            ),
            "admin",
        )
        template = await catalog.create_certificate_template(
            conn,
            CertificateTemplate(
                uuid.uuid4(),
                "Diploma",
                "Diploma of {{ name }}",
                "Awarded to {{ name }}",
                CertificateLayout(),
            ),
            "admin",
        )
    return Tenant(
        upload_settings,
        tenant_id,
        plain.schema.name,
        cert.schema.name,
        template.name,
        uploads_service_pb2_grpc.UploadServiceStub(uploads_app.channel),
    )


def row(i: int, **cells: str) -> str:
    """A valid data row number i (unique recipients), with some cells replaced."""
    values = {
        "email": f"holder{i}@example.com",
        "phone": f"+1415555{i:04d}",
        "name": f"Holder {i}",
        "age": str(20 + i % 50),
        "born": "1990-05-17",
        "score": "7.5",
        "member": "yes",
        "level": "Gold",
        "site": "https://example.com/p",
    }
    values.update(cells)
    return ",".join(values[c] for c in HEADER.split(","))


def csv_file(rows: Sequence[str], header: str = HEADER, newline: str = "\r\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


async def batch_rows(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every record of the tenant, as stored (inspection, bypassing RLS as the owner)."""
    return list(
        await pool.fetch(
            "SELECT r.*, b.state AS batch_state FROM records r JOIN batches b"
            " ON b.tenant_id = r.tenant_id AND b.id = r.batch_id"
            " WHERE r.tenant_id = $1 ORDER BY r.row_number",
            tenant_id,
        )
    )


async def batch_count(pool: asyncpg.Pool, tenant_id: uuid.UUID) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM batches WHERE tenant_id = $1", tenant_id)
    return count


def status_code(error: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return error.code()
