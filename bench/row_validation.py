"""Row validation benchmark: rows/s of the shared value rules (credbatch.schema.values).

A schema like a typical upload's (string, date, enum, integer, boolean) with the EMAIL
medium, and the same with EMAIL and SMS (phonenumbers dominates then). Rows are distinct.

    python bench/row_validation.py             # 100,000 rows
"""

from __future__ import annotations

import argparse
import time
import uuid

from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from credbatch.schema.values import compile_row_validator

SCHEMA = SchemaVersion(
    uuid.uuid4(),
    1,
    "Bench",
    (
        Attribute("given_name", AttributeType.STRING, required=True),
        Attribute("completed_on", AttributeType.DATE, required=True),
        Attribute("grade", AttributeType.ENUM, enum_values=("Gold", "Silver", "Bronze")),
        Attribute("points", AttributeType.INTEGER),
        Attribute("passed", AttributeType.BOOLEAN),
    ),
)


def _rows(count: int, with_phone: bool) -> list[list[str]]:
    rows = []
    for i in range(count):
        row = [f"holder.{i}@example.org"]
        if with_phone:
            row.append(f"+4420794{i % 100000:05d}")
        row += [f"Holder {i}", "2026-01-31", "silver", str(i), "yes"]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    for mediums in ([Medium.EMAIL], [Medium.EMAIL, Medium.SMS]):
        rows = _rows(args.rows, Medium.SMS in mediums)
        validator = compile_row_validator(SCHEMA, mediums, "GB")
        started = time.perf_counter()
        errors = 0
        for row in rows:
            errors += len(validator.validate(row).errors)
        elapsed = time.perf_counter() - started
        label = "+".join(m.value for m in mediums)
        print(f"{label}: {args.rows / elapsed:,.0f} rows/s ({errors} errors)")


if __name__ == "__main__":
    main()
