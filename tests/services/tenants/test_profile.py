"""TenantService profile: read, update by mask, roles, every field's refusal, isolation."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.tenants.v1 import tenant_pb2 as pb
from credbatch.gen.tenants.v1 import tenants_service_pb2 as api
from tests.fixtures.grpc import bearer, fails
from tests.tenants.images import PNG_1X1, SVG_CLEAN


def _admin(settings: Settings, tenant: uuid.UUID) -> Any:
    return bearer(settings, tenant, "admin", ["org_admin"])


def _update(paths: list[str], **fields: Any) -> api.UpdateTenantProfileRequest:
    return api.UpdateTenantProfileRequest(
        tenant_profile=pb.TenantProfile(**fields),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )


async def test_a_new_tenant_has_the_empty_profile(settings: Settings, tenants_stub: Any) -> None:
    got = await tenants_stub.GetTenantProfile(
        api.GetTenantProfileRequest(), metadata=_admin(settings, uuid.uuid4())
    )
    assert got.name == "tenantProfile"
    assert got.display_name == "" and not got.HasField("logo")
    assert not got.HasField("retention_days") and not got.HasField("update_time")


async def test_update_changes_only_the_masked_fields(settings: Settings, tenants_stub: Any) -> None:
    tenant = uuid.uuid4()
    as_admin = _admin(settings, tenant)
    first = await tenants_stub.UpdateTenantProfile(
        _update(
            ["display_name", "localized_display_names", "logo", "primary_color",
             "background_color", "support_email", "support_url", "default_locale",
             "email_sender_name", "reply_to", "sms_sender_id", "retention_days",
             "reminder_days"],
            display_name="Example University",
            localized_display_names={"DE": "Beispiel-Universität", "fr-ch": "Université Exemple"},
            logo=pb.Logo(content=PNG_1X1),
            primary_color="#1A4480",
            background_color="#FFFFFF",
            support_email="help@example.edu",
            support_url="https://example.edu/help",
            default_locale="en-GB",
            email_sender_name="Example University Registry",
            reply_to="registry@example.edu",
            sms_sender_id="ExampleUni",
            retention_days=90,
            reminder_days=[3, 10],
        ),
        metadata=as_admin,
    )  # fmt: skip
    assert first.display_name == "Example University"
    # Canonical case: locales as BCP 47 writes them, colours lower case.
    assert dict(first.localized_display_names) == {
        "de": "Beispiel-Universität",
        "fr-CH": "Université Exemple",
    }
    assert first.primary_color == "#1a4480" and first.default_locale == "en-GB"
    assert first.logo.media_type == "image/png"
    assert first.logo.uri == (
        f"{settings.public_url}/tenants/{tenant}/logo/{first.logo.sha256}.png"
    )
    assert first.logo.content == b""
    assert first.retention_days == 90 and list(first.reminder_days) == [3, 10]
    second = await tenants_stub.UpdateTenantProfile(
        _update(["display_name", "retention_days", "logo"], display_name="Example Uni",
                logo=pb.Logo(content=SVG_CLEAN)),
        metadata=as_admin,
    )  # fmt: skip
    assert second.display_name == "Example Uni"
    assert not second.HasField("retention_days")  # named and unset: back to the platform's
    assert second.logo.media_type == "image/svg+xml"
    assert second.support_email == "help@example.edu" and list(second.reminder_days) == [3, 10]
    got = await tenants_stub.GetTenantProfile(api.GetTenantProfileRequest(), metadata=as_admin)
    assert got == second
    cleared = await tenants_stub.UpdateTenantProfile(_update(["logo"]), metadata=as_admin)
    assert not cleared.HasField("logo")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("display_name", "x" * 201, "TOO_LONG"),
        ("display_name", "Evil\r\nBcc: x@example.org", "INVALID_CHARACTERS"),
        ("primary_color", "blue", "INVALID_COLOR"),
        ("primary_color", "#ffff00", "LOW_CONTRAST"),
        ("background_color", "#12345", "INVALID_COLOR"),
        ("support_email", "not an address", "INVALID_EMAIL"),
        ("reply_to", "a@b", "INVALID_EMAIL"),
        ("support_url", "http://example.edu/help", "INVALID_URL"),
        ("support_url", "javascript:alert(1)", "INVALID_URL"),
        ("support_url", "https://user@example.edu/", "INVALID_URL"),
        ("default_locale", "english", "INVALID_LOCALE"),
        ("default_locale", "en_US", "INVALID_LOCALE"),
        ("sms_sender_id", "TooLongSenderId", "INVALID_SENDER_ID"),
        ("sms_sender_id", "12345", "INVALID_SENDER_ID"),
        ("email_sender_name", "y" * 101, "TOO_LONG"),
        ("retention_days", 0, "OUT_OF_RANGE"),
        ("retention_days", 3651, "OUT_OF_RANGE"),
        ("reminder_days", [10, 3], "NOT_ASCENDING"),
        ("reminder_days", [0], "OUT_OF_RANGE"),
        ("reminder_days", [1, 2, 3, 4, 5, 6], "TOO_MANY_ENTRIES"),
    ],
)
async def test_each_invalid_field_is_named(
    settings: Settings, tenants_stub: Any, field: str, value: Any, reason: str
) -> None:
    error = await fails(
        tenants_stub.UpdateTenantProfile(
            _update([field], **{field: value}), metadata=_admin(settings, uuid.uuid4())
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [(v.field, v.reason) for v in error.violations] == [(f"tenant_profile.{field}", reason)]


async def test_every_problem_is_reported_at_once_and_nothing_stored(
    settings: Settings, tenants_stub: Any
) -> None:
    tenant = uuid.uuid4()
    error = await fails(
        tenants_stub.UpdateTenantProfile(
            _update(
                ["display_name", "localized_display_names", "logo", "support_email"],
                display_name="Fine",
                localized_display_names={"xx_YY": "Bad", "de": " "},
                logo=pb.Logo(content=b"GIF89a....."),
                support_email="nope",
            ),
            metadata=_admin(settings, tenant),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert sorted(error.fields) == [
        "tenant_profile.localized_display_names['de']",
        "tenant_profile.localized_display_names['xx_YY']",
        "tenant_profile.logo.content",
        "tenant_profile.support_email",
    ]
    got = await tenants_stub.GetTenantProfile(
        api.GetTenantProfileRequest(), metadata=_admin(settings, tenant)
    )
    assert got.display_name == ""


async def test_the_contrast_is_checked_against_the_stored_background(
    settings: Settings, tenants_stub: Any
) -> None:
    as_admin = _admin(settings, uuid.uuid4())
    await tenants_stub.UpdateTenantProfile(
        _update(["background_color"], background_color="#102040"), metadata=as_admin
    )
    error = await fails(
        tenants_stub.UpdateTenantProfile(
            _update(["primary_color"], primary_color="#203050"), metadata=as_admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "background_color" in error.violations[0].description


async def test_unknown_or_missing_mask_paths_are_refused(
    settings: Settings, tenants_stub: Any
) -> None:
    as_admin = _admin(settings, uuid.uuid4())
    for paths in ([], ["name"], ["display_name", "colour"]):
        error = await fails(
            tenants_stub.UpdateTenantProfile(_update(paths), metadata=as_admin),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert error.fields == ["update_mask"]


@pytest.mark.parametrize("role", ["issuer", "observer"])
async def test_only_admins_update_but_every_role_reads(
    settings: Settings, tenants_stub: Any, role: str
) -> None:
    caller = bearer(settings, uuid.uuid4(), "someone", [role])
    await fails(
        tenants_stub.UpdateTenantProfile(_update(["display_name"], display_name="X"),
                                         metadata=caller),
        grpc.StatusCode.PERMISSION_DENIED,
    )  # fmt: skip
    await tenants_stub.GetTenantProfile(api.GetTenantProfileRequest(), metadata=caller)


async def test_another_tenants_profile_is_unreachable(
    settings: Settings, tenants_stub: Any, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await tenants_stub.UpdateTenantProfile(
        _update(["display_name"], display_name="Tenant A"), metadata=_admin(settings, a)
    )
    seen_by_b = await tenants_stub.GetTenantProfile(
        api.GetTenantProfileRequest(), metadata=_admin(settings, b)
    )
    assert seen_by_b.display_name == ""
    await tenants_stub.UpdateTenantProfile(
        _update(["display_name"], display_name="Tenant B"), metadata=_admin(settings, b)
    )
    # As the application role in B's transaction, naming A's id: no row, and no write.
    async with app_pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(b))
        assert (
            await conn.fetchval("SELECT count(*) FROM tenant_profiles WHERE tenant_id = $1", a) == 0
        )
        updated = await conn.execute(
            "UPDATE tenant_profiles SET display_name = 'hijacked' WHERE tenant_id = $1", a
        )
        assert updated == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO tenant_profiles (tenant_id, display_name) VALUES ($1, 'x')",
                uuid.uuid4(),
            )
    names = dict(
        await owner_pool.fetch(
            "SELECT tenant_id, display_name FROM tenant_profiles WHERE tenant_id = ANY($1)",
            [a, b],
        )
    )
    assert names == {a: "Tenant A", b: "Tenant B"}
