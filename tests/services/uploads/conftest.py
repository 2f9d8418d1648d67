"""Fixtures for UploadService tests: the real service on a real server and database."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
import pytest_asyncio

from credbatch.catalog import repository as catalog
from credbatch.catalog.model import CertificateTemplate, SchemaDraft
from credbatch.config import Settings
from credbatch.gen.uploads.v1 import uploads_service_pb2_grpc
from credbatch.schema.model import Attribute, AttributeType
from credbatch.templating.certificate import CertificateLayout
from credbatch.tenancy import TenantScope, tenant_transaction
from services.uploads.main import service_specs
from tests.fixtures.grpc import RunningApp, StartApp
from tests.fixtures.uploads import ATTRIBUTES, Tenant


@pytest.fixture(scope="session")
def upload_settings(settings: Settings) -> Settings:
    return settings.with_overrides(max_rows=50_000, max_bytes=8 * 1024 * 1024)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def uploads_app(
    start_app: StartApp, upload_settings: Settings, app_pool: asyncpg.Pool
) -> RunningApp:
    return await start_app(upload_settings, service_specs(upload_settings, app_pool))


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(
    uploads_app: RunningApp, upload_settings: Settings, app_pool: asyncpg.Pool
) -> Tenant:
    return await _new_tenant(uploads_app, upload_settings, app_pool)


@pytest_asyncio.fixture(loop_scope="session")
async def other_tenant(
    uploads_app: RunningApp, upload_settings: Settings, app_pool: asyncpg.Pool
) -> Tenant:
    """A second tenant, with its own schemas, for isolation tests."""
    return await _new_tenant(uploads_app, upload_settings, app_pool)


async def _new_tenant(
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
