"""The `--medium email|sms` option shared by sample-csv and upload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from credbatch.gen.common.v1 import medium_pb2

F = TypeVar("F", bound=Callable[..., Any])

MEDIUMS = {"email": medium_pb2.MEDIUM_EMAIL, "sms": medium_pb2.MEDIUM_SMS}


def medium_option(func: F) -> F:
    return click.option(
        "--medium",
        "mediums",
        multiple=True,
        required=True,
        type=click.Choice(sorted(MEDIUMS), case_sensitive=False),
        help="How holders are invited; repeat for both.",
    )(func)


def to_mediums(values: tuple[str, ...]) -> list[medium_pb2.Medium]:
    """Unique mediums in the order given."""
    seen: list[medium_pb2.Medium] = []
    for value in values:
        medium = MEDIUMS[value.lower()]
        if medium not in seen:
            seen.append(medium)
    return seen
