"""A real TemplateService on port 0, on this run's database as the application role."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.templates.v1 import (
    credential_schema_pb2,
    templates_service_pb2,
    templates_service_pb2_grpc,
)
from services.templates.main import service_specs
from tests.fixtures.grpc import Metadata, StartApp, bearer


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def templates_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    # Any: the generated stubs are typed for the synchronous API.
    running = await start_app(settings, service_specs(settings, app_pool))
    return templates_service_pb2_grpc.TemplateServiceStub(running.channel)


@dataclass(frozen=True)
class Tenant:
    """A fresh tenant and tokens for each role in it."""

    id: uuid.UUID
    admin: Metadata
    service: Metadata
    issuer: Metadata
    observer: Metadata


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    return make_tenant(settings)


@pytest.fixture
def other_tenant(settings: Settings) -> Tenant:
    return make_tenant(settings)


def make_tenant(settings: Settings) -> Tenant:
    tenant_id = uuid.uuid4()
    return Tenant(
        tenant_id,
        bearer(settings, tenant_id, "admin-1", ["org_admin"]),
        bearer(settings, tenant_id, "svc-1", ["service"]),
        bearer(settings, tenant_id, "issuer-1", ["issuer"], ["sales"]),
        bearer(settings, tenant_id, "observer-1", ["observer"], ["sales"]),
    )


T = credential_schema_pb2


def attribute(
    name: str,
    kind: Any = T.ATTRIBUTE_TYPE_STRING,
    *,
    required: bool = False,
    enum_values: Sequence[str] = (),
    description: str = "",
) -> credential_schema_pb2.Attribute:
    return credential_schema_pb2.Attribute(
        name=name, type=kind, required=required, enum_values=enum_values, description=description
    )


def every_type_attributes() -> list[credential_schema_pb2.Attribute]:
    """One required attribute per type (the ENUM with two values)."""
    return [
        attribute("given_name", T.ATTRIBUTE_TYPE_STRING, required=True, description="First name"),
        attribute("points", T.ATTRIBUTE_TYPE_INTEGER, required=True),
        attribute("score", T.ATTRIBUTE_TYPE_NUMBER, required=True),
        attribute("passed", T.ATTRIBUTE_TYPE_BOOLEAN, required=True),
        attribute("completed_on", T.ATTRIBUTE_TYPE_DATE, required=True),
        attribute("contact_email", T.ATTRIBUTE_TYPE_EMAIL, required=True),
        attribute("contact_phone", T.ATTRIBUTE_TYPE_PHONE, required=True),
        attribute("homepage", T.ATTRIBUTE_TYPE_URL, required=True),
        attribute("grade", T.ATTRIBUTE_TYPE_ENUM, required=True, enum_values=["Gold", "Silver"]),
        attribute("nickname"),
    ]


async def create_schema(
    stub: Any,
    metadata: Metadata,
    *,
    display_name: str | None = None,
    attributes: Sequence[credential_schema_pb2.Attribute] | None = None,
    requires_certificate: bool = False,
    request_id: str = "",
) -> credential_schema_pb2.CredentialSchema:
    schema = credential_schema_pb2.CredentialSchema(
        display_name=display_name or f"Course {uuid.uuid4().hex[:8]}",
        attributes=list(attributes) if attributes is not None else every_type_attributes(),
        requires_certificate=requires_certificate,
    )
    request = templates_service_pb2.CreateCredentialSchemaRequest(
        schema=schema, request_id=request_id
    )
    result: credential_schema_pb2.CredentialSchema = await stub.CreateCredentialSchema(
        request, metadata=metadata
    )
    return result
