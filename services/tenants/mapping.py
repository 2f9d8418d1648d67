"""Proto <-> domain conversion for the TenantService."""

from __future__ import annotations

import uuid

from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.gen.tenants.v1 import tenant_pb2, tenants_service_pb2
from credbatch.tenants.profile import FIELDS, TenantProfile, logo_url
from services.tenants.profiles import ProfileUpdate

PROFILE_NAME = "tenantProfile"


def check_name(name: str) -> None:
    if name and name != PROFILE_NAME:
        description = f"must be `{PROFILE_NAME}` (or empty)"
        raise InvalidArgument(
            f"invalid name: {description}",
            reason="INVALID_NAME",
            violations=[FieldViolation("name", description, "INVALID_NAME")],
        )


def profile_update(request: tenants_service_pb2.UpdateTenantProfileRequest) -> ProfileUpdate:
    message = request.tenant_profile
    check_name(message.name)
    paths = tuple(dict.fromkeys(request.update_mask.paths))
    unknown = [p for p in paths if p not in FIELDS]
    if not paths or unknown:
        description = f"paths among {', '.join(FIELDS)}" + (
            f"; not {', '.join(unknown)}" if unknown else ""
        )
        raise InvalidArgument(
            f"invalid update_mask: {description}",
            violations=[FieldViolation("update_mask", description, "INVALID_UPDATE_MASK")],
        )
    values = TenantProfile(
        display_name=message.display_name,
        localized_display_names=dict(message.localized_display_names),
        primary_color=message.primary_color,
        background_color=message.background_color,
        support_email=message.support_email,
        support_url=message.support_url,
        default_locale=message.default_locale,
        email_sender_name=message.email_sender_name,
        reply_to=message.reply_to,
        sms_sender_id=message.sms_sender_id,
        retention_days=message.retention_days if message.HasField("retention_days") else None,
        reminder_days=tuple(message.reminder_days),
    )
    return ProfileUpdate(paths, values, message.logo.content)


def profile_to_proto(
    profile: TenantProfile, public_url: str, tenant_id: uuid.UUID
) -> tenant_pb2.TenantProfile:
    message = tenant_pb2.TenantProfile(
        name=PROFILE_NAME,
        display_name=profile.display_name,
        localized_display_names=dict(profile.localized_display_names),
        primary_color=profile.primary_color,
        background_color=profile.background_color,
        support_email=profile.support_email,
        support_url=profile.support_url,
        default_locale=profile.default_locale,
        email_sender_name=profile.email_sender_name,
        reply_to=profile.reply_to,
        sms_sender_id=profile.sms_sender_id,
        reminder_days=list(profile.reminder_days),
    )
    if profile.retention_days is not None:
        message.retention_days = profile.retention_days
    if profile.logo is not None:
        message.logo.media_type = profile.logo.media_type
        message.logo.sha256 = profile.logo.sha256
        message.logo.uri = logo_url(
            public_url, tenant_id, profile.logo.sha256, profile.logo.media_type
        )
    if profile.updated_at is not None:
        message.update_time.FromDatetime(profile.updated_at)
    return message
