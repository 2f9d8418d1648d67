"""`credbatch` entry point: one click group; each command lives in its own module."""

from __future__ import annotations

import click

from credbatch.cli.token import token


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """credbatch: issue verifiable credentials in batches from CSV files."""


cli.add_command(token)


def main() -> None:
    cli()
