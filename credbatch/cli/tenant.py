"""`credbatch tenant show|update|erase-holder`: the tenant profile holders and wallets see, and
the erasure of one holder's personal data from the caller's tenant.

Erasure cannot be undone, so `erase-holder` asks first unless `--yes` is given. It is
idempotent on the server: a second run finds nothing left and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from google.protobuf import field_mask_pb2

from credbatch.cli.client import (
    EXIT_INVALID,
    UNARY_TIMEOUT,
    CliError,
    address_option,
    channel,
    resolve,
    rpc_errors,
    token_option,
)
from credbatch.cli.output import note, table, timestamp
from credbatch.gen.tenants.v1 import tenant_pb2, tenants_service_pb2, tenants_service_pb2_grpc

# Text options: option name -> profile field.
_TEXT_OPTIONS = {
    "display_name": "display_name",
    "primary_color": "primary_color",
    "background_color": "background_color",
    "support_email": "support_email",
    "support_url": "support_url",
    "locale": "default_locale",
    "email_sender_name": "email_sender_name",
    "reply_to": "reply_to",
    "sms_sender_id": "sms_sender_id",
}


@click.group()
def tenant() -> None:
    """The caller's tenant: its profile (name, logo, colours, contact and defaults holders
    see) and the erasure of a holder's personal data."""


def _show(profile: tenant_pb2.TenantProfile) -> None:
    localized: list[list[object]] = [
        [f"display_name[{locale}]", name]
        for locale, name in sorted(profile.localized_display_names.items())
    ]
    rows: list[list[object]] = [
        ["display_name", profile.display_name],
        *localized,
        ["logo", f"{profile.logo.uri} ({profile.logo.media_type})" if profile.logo.uri else ""],
        ["primary_color", profile.primary_color],
        ["background_color", profile.background_color],
        ["support_email", profile.support_email],
        ["support_url", profile.support_url],
        ["default_locale", profile.default_locale],
        ["email_sender_name", profile.email_sender_name],
        ["reply_to", profile.reply_to],
        ["sms_sender_id", profile.sms_sender_id],
        [
            "retention_days",
            profile.retention_days if profile.HasField("retention_days") else "platform default",
        ],
        ["reminder_days", ",".join(str(d) for d in profile.reminder_days) or "none"],
        ["updated", timestamp(profile.update_time)],
    ]
    table("tenant profile", ["field", "value"], rows)


@tenant.command("show")
@token_option
@address_option("tenants")
def show(token: str | None, tenants_addr: str) -> None:
    """Print the tenant profile."""
    endpoint = resolve("tenants", token, tenants_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        profile = tenants_service_pb2_grpc.TenantServiceStub(chan).GetTenantProfile(
            tenants_service_pb2.GetTenantProfileRequest(),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    _show(profile)


def day_list(text: str, option: str) -> list[int]:
    """Comma-separated whole days (reminder days), refused naming ``option``."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise CliError(f"{option}: comma-separated whole days, e.g. 3,10", EXIT_INVALID) from error


def _locale_names(pairs: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        locale, sep, name = pair.partition("=")
        if not sep:
            raise CliError(f"--name {pair!r}: LOCALE=NAME, e.g. de=Beispiel AG", EXIT_INVALID)
        found[locale.strip()] = name
    return found


@tenant.command("update")
@click.option("--display-name", help="The organisation's name, as holders see it.")
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="LOCALE=NAME",
    help="The name in another locale (repeatable; replaces every localised name given before).",
)
@click.option(
    "--logo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PNG or SVG file (at most 256 KiB).",
)
@click.option("--no-logo", is_flag=True, help="Remove the logo.")
@click.option("--primary-color", help="#rrggbb for headings and buttons.")
@click.option("--background-color", help="#rrggbb behind the name and logo.")
@click.option("--support-email", help="Where holders write with questions.")
@click.option("--support-url", help="An https page for holders with questions.")
@click.option("--locale", help="BCP 47 tag of --display-name, e.g. en or de-CH.")
@click.option("--email-sender-name", help="Display name of the invitation emails' sender.")
@click.option("--reply-to", help="Email address replies go to.")
@click.option("--sms-sender-id", help="Alphanumeric SMS sender, 1-11 characters.")
@click.option("--retention-days", help="Days personal data is kept; 'default' = the platform's.")
@click.option("--reminder-days", help="Default reminder days, e.g. 3,10; '' = none.")
@token_option
@address_option("tenants")
def update(
    names: tuple[str, ...],
    logo: Path | None,
    no_logo: bool,
    retention_days: str | None,
    reminder_days: str | None,
    token: str | None,
    tenants_addr: str,
    **texts: str | None,
) -> None:
    """Change the fields given (an empty value clears a text field); print the profile."""
    fields: dict[str, Any] = {}
    for option, field in _TEXT_OPTIONS.items():
        if texts.get(option) is not None:
            fields[field] = texts[option]
    if names:
        fields["localized_display_names"] = _locale_names(names)
    if logo is not None and no_logo:
        raise CliError("--logo and --no-logo together", EXIT_INVALID)
    if logo is not None:
        fields["logo"] = tenant_pb2.Logo(content=logo.read_bytes())
    if no_logo:
        fields["logo"] = None
    if retention_days is not None:
        if retention_days.strip().lower() == "default":
            fields["retention_days"] = None
        else:
            given = day_list(retention_days, "--retention-days")
            if len(given) != 1:
                raise CliError("--retention-days: one whole number or 'default'", EXIT_INVALID)
            fields["retention_days"] = given[0]
    if reminder_days is not None:
        fields["reminder_days"] = day_list(reminder_days, "--reminder-days")
    if not fields:
        raise CliError("nothing to change: give at least one option", EXIT_INVALID)
    paths = sorted(fields)
    message = tenant_pb2.TenantProfile(**{k: v for k, v in fields.items() if v is not None})
    endpoint = resolve("tenants", token, tenants_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        profile = tenants_service_pb2_grpc.TenantServiceStub(chan).UpdateTenantProfile(
            tenants_service_pb2.UpdateTenantProfileRequest(
                tenant_profile=message, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    note(f"updated {', '.join(paths)}")
    _show(profile)


@tenant.command("erase-holder")
@click.option("--email", default="", help="The holder's email address.")
@click.option("--phone", default="", help="The holder's phone number.")
@click.option("--revoke", is_flag=True, help="Revoke the holder's issued credentials.")
@click.option("--keep-valid", is_flag=True, help="Leave the holder's issued credentials valid.")
@click.option("--reason", default="", help="Revoke reason kept with each revoked record.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@token_option
@address_option("tenants")
def erase_holder(
    email: str,
    phone: str,
    revoke: bool,
    keep_valid: bool,
    reason: str,
    yes: bool,
    token: str | None,
    tenants_addr: str,
) -> None:
    """Erase the personal data of the holder with this email or phone from every batch of
    the tenant (org admins only). Records not yet delivered are cancelled."""
    if bool(email) == bool(phone):
        raise CliError("give exactly one of --email and --phone")
    if revoke == keep_valid:
        raise CliError("choose --revoke or --keep-valid for the holder's issued credentials")
    if not yes:
        click.confirm(
            "Erase this holder's contact data and attributes from every batch? This cannot be "
            "undone",
            abort=True,
        )
    endpoint = resolve("tenants", token, tenants_addr)
    disposition = (
        tenants_service_pb2.CREDENTIAL_DISPOSITION_REVOKE
        if revoke
        else tenants_service_pb2.CREDENTIAL_DISPOSITION_KEEP_VALID
    )
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = tenants_service_pb2_grpc.TenantServiceStub(chan)
        response = stub.EraseHolder(
            tenants_service_pb2.EraseHolderRequest(
                email=email or None, phone=phone or None, credentials=disposition, reason=reason
            ),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    if not response.records_erased and not response.records_cancelled:
        note("nothing to erase: no record of the tenant holds that contact any more")
        return
    note(
        f"{response.records_erased:,} record(s) erased in {response.batches:,} batch(es); "
        f"{response.credentials_revoked:,} credential(s) revoked, "
        f"{response.records_cancelled:,} undelivered record(s) cancelled"
    )
