"""`credbatch keys rewrap`: move every tenant's signing keys to a new key-encryption key.

Run it with the current KEK in CREDBATCH_KEK and the owner's CREDBATCH_DATABASE_URL (the
migration role), then restart the issuance workers with the new KEK: one transaction re-wraps
all keys, so until the restart the running workers keep their decrypted keys in memory, and a
worker started with the old KEK afterwards refuses to sign, naming both KEK ids.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import click

from credbatch.config import ConfigError, decode_kek, load_settings
from credbatch.signing.kek import KeyUnwrapError
from credbatch.signing.kek_strength import WeakKekError, check_kek_strength
from credbatch.signing.keys import RewrapResult, rewrap_all

NEW_KEK_ENV = "CREDBATCH_NEW_KEK"


@click.group()
def keys() -> None:
    """Manage tenants' signing keys (as the database owner)."""


def _new_kek(path: Path | None, production: bool) -> bytes:
    if path is not None:
        raw, source = path.read_text(), str(path)
    elif os.environ.get(NEW_KEK_ENV):
        raw, source = os.environ[NEW_KEK_ENV], NEW_KEK_ENV
    else:
        raise click.UsageError(f"give --new-kek-file PATH or set {NEW_KEK_ENV}")
    new_kek = decode_kek(raw, source)
    if production:
        check_kek_strength(new_kek)
    return new_kek


async def _rewrap(database_url: str, old_kek: bytes, new_kek: bytes) -> RewrapResult:
    conn = await asyncpg.connect(database_url)
    try:
        return await rewrap_all(conn, old_kek, new_kek)
    finally:
        await conn.close()


@keys.command()
@click.option(
    "--new-kek-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"File holding the new KEK (base64 of 32 bytes); else {NEW_KEK_ENV}.",
)
def rewrap(new_kek_file: Path | None) -> None:
    """Re-wrap every tenant's signing keys under a new KEK, in one transaction."""
    try:
        settings = load_settings()
        new_kek = _new_kek(new_kek_file, not settings.development)
        result = asyncio.run(_rewrap(settings.database_url, settings.kek_bytes(), new_kek))
    except (ConfigError, WeakKekError, KeyUnwrapError, PermissionError) as error:
        raise click.ClickException(str(error)) from None
    except (OSError, asyncpg.PostgresError) as error:
        raise click.ClickException(f"database: {error}") from None
    click.echo(
        f"rewrapped {result.rewrapped} signing keys under KEK {result.new_kek_id} "
        f"({result.already} already under it); restart the workers with the new KEK"
    )
