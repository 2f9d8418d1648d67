"""The sample CSV of a schema and mediums: header and one example row, by the shared rules."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass

from credbatch.schema.columns import Column, expected_columns
from credbatch.schema.model import Medium, SchemaVersion


@dataclass(frozen=True, slots=True)
class SampleCsv:
    filename: str
    content: bytes
    columns: tuple[Column, ...]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:80].rstrip("-") or "schema"


def sample_csv(schema: SchemaVersion, mediums: Collection[Medium]) -> SampleCsv:
    """UTF-8 RFC 4180 CSV (CRLF line ends), named `{display-name}-v{version}.csv`."""
    columns = tuple(expected_columns(schema, mediums))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name for column in columns])
    writer.writerow([column.example for column in columns])
    return SampleCsv(
        filename=f"{_slug(schema.display_name)}-v{schema.version}.csv",
        content=out.getvalue().encode("utf-8"),
        columns=columns,
    )
