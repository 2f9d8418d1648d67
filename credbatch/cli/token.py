"""`credbatch token`: print a development caller token."""

from __future__ import annotations

import uuid

import click

from credbatch.auth.roles import ALL_ROLES
from credbatch.auth.tokens import mint_dev_token
from credbatch.config import ConfigError, load_settings


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.command()
@click.option("--tenant", required=True, help="Tenant UUID.")
@click.option("--sub", required=True, help="Caller id (user or service).")
@click.option(
    "--roles",
    "roles",
    multiple=True,
    required=True,
    help=f"Role(s), repeated or comma-separated: {', '.join(sorted(ALL_ROLES))}.",
)
@click.option("--departments", "departments", multiple=True, help="Department name(s).")
@click.option("--ttl", default=12 * 3600, show_default=True, help="Lifetime in seconds.")
def token(
    tenant: str, sub: str, roles: tuple[str, ...], departments: tuple[str, ...], ttl: int
) -> None:
    """Print a development token signed with CREDBATCH_JWT_SECRET."""
    try:
        tenant_id = uuid.UUID(tenant)
    except ValueError:
        raise click.BadParameter("must be a UUID", param_hint="--tenant") from None
    role_list = _split(roles)
    unknown = sorted(set(role_list) - ALL_ROLES)
    if unknown:
        raise click.BadParameter(f"unknown role(s): {', '.join(unknown)}", param_hint="--roles")
    try:
        settings = load_settings()
        if not settings.development:
            raise click.ClickException("development tokens are refused in production mode")
        click.echo(
            mint_dev_token(
                settings,
                tenant=tenant_id,
                sub=sub,
                roles=role_list,
                departments=_split(departments),
                ttl_seconds=ttl,
            )
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
