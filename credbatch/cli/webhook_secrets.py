"""`credbatch webhooks rewrap-secrets`: move every webhook signing secret to a new key.

Run it with the current key in CREDBATCH_WEBHOOK_KEK and the owner's CREDBATCH_DATABASE_URL
(the migration role), then restart the webhook service and the dispatchers with the new key:
one transaction moves every secret, so until the restart the running dispatchers cannot open
the secrets (their deliveries are retried later, none is lost), and a process started with
the old key afterwards names both key ids. Without a new key it seals, under the current one,
the secrets a database stored in plain text before secrets were sealed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import click

from credbatch.config import ConfigError, decode_kek, load_settings
from credbatch.signing.kek_strength import WeakKekError, check_kek_strength
from credbatch.webhooks.rewrap import SecretsRewrapped, rewrap_secrets
from credbatch.webhooks.sealing import SecretUnsealError

NEW_KEK_ENV = "CREDBATCH_NEW_WEBHOOK_KEK"


def _new_kek(path: Path | None, current: bytes, production: bool) -> bytes:
    if path is not None:
        raw, source = path.read_text(), str(path)
    elif os.environ.get(NEW_KEK_ENV):
        raw, source = os.environ[NEW_KEK_ENV], NEW_KEK_ENV
    else:
        return current
    new_kek = decode_kek(raw, source)
    if production:
        check_kek_strength(new_kek)
    return new_kek


async def _rewrap(database_url: str, old_kek: bytes, new_kek: bytes) -> SecretsRewrapped:
    conn = await asyncpg.connect(database_url)
    try:
        return await rewrap_secrets(conn, old_kek, new_kek)
    finally:
        await conn.close()


@click.command("rewrap-secrets")
@click.option(
    "--new-kek-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding the new webhook KEK (base64 of 32 bytes); else {NEW_KEK_ENV}; "
    "neither: seal plain-text secrets under the current key.",
)
def rewrap_secrets_command(new_kek_file: Path | None) -> None:
    """Seal every webhook signing secret under a new key, in one transaction (as the owner)."""
    try:
        settings = load_settings()
        old_kek = settings.webhook_kek_bytes()
        new_kek = _new_kek(new_kek_file, old_kek, not settings.development)
        result = asyncio.run(_rewrap(settings.database_url, old_kek, new_kek))
    except (ConfigError, WeakKekError, SecretUnsealError, PermissionError) as error:
        raise click.ClickException(str(error)) from None
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"database: {error}") from None
    click.echo(
        f"rewrapped {result.rewrapped} webhook secrets and sealed {result.sealed} stored in "
        f"plain text under key {result.new_kek_id} ({result.already} already under it)"
    )
    if new_kek != old_kek:
        click.echo("restart the webhook service and dispatchers with the new key")
