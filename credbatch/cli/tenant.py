"""`credbatch tenant erase-holder`: erase one holder's personal data from the caller's tenant.

Erasure cannot be undone, so the command asks first unless `--yes` is given. It is idempotent
on the server: a second run finds nothing left and says so.
"""

from __future__ import annotations

import click

from credbatch.cli.client import (
    UNARY_TIMEOUT,
    CliError,
    address_option,
    channel,
    resolve,
    rpc_errors,
    token_option,
)
from credbatch.cli.output import note
from credbatch.gen.tenants.v1 import tenants_service_pb2, tenants_service_pb2_grpc


@click.group()
def tenant() -> None:
    """The caller's tenant: erasure of a holder's personal data."""


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
