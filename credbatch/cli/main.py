"""`credbatch` entry point: one click group; each command lives in its own module."""

from __future__ import annotations

import click

from credbatch.cli.batches import batches
from credbatch.cli.demo import demo
from credbatch.cli.keys import keys
from credbatch.cli.report import report
from credbatch.cli.sample_csv import sample_csv
from credbatch.cli.schemas import schemas
from credbatch.cli.status import status
from credbatch.cli.templates import templates
from credbatch.cli.tenant import tenant
from credbatch.cli.token import token
from credbatch.cli.upload import upload
from credbatch.cli.webhook_secrets import rewrap_secrets_command
from credbatch.cli.webhooks import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """credbatch: issue verifiable credentials in batches from CSV files."""


cli.add_command(token)
cli.add_command(keys)
for command in (schemas, templates, sample_csv, upload, batches, status, report, demo):
    cli.add_command(command)
webhooks.add_command(rewrap_secrets_command)
cli.add_command(webhooks)
cli.add_command(tenant)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
