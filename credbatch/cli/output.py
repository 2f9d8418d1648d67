"""Tables, messages and progress bars for the CLI (rich), kept in one place.

Tables and data go to stdout; progress and notes go to stderr so output stays pipeable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a table to stdout."""
    grid = Table(title=title, show_lines=False, header_style="bold")
    for index, column in enumerate(columns):
        # The first column is a resource name or key: kept whole so it can be copied.
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    out.print(grid)


def note(message: str) -> None:
    """A progress note on stderr."""
    err.print(message, highlight=False)


def timestamp(value: timestamp_pb2.Timestamp) -> str:
    """A timestamp as local-free ISO text; empty when unset."""
    if not value.seconds and not value.nanos:
        return ""
    moment = datetime.fromtimestamp(value.seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def enum_label(name: str, prefix: str) -> str:
    """`BATCH_STATE_IN_PROGRESS` → `IN_PROGRESS`."""
    return name.removeprefix(prefix)
