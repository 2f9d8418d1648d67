"""Read schema and template definitions from JSON or YAML files into protobuf messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from credbatch.cli.client import EXIT_INVALID, CliError

M = TypeVar("M", bound=Message)


def load_document(path: Path) -> dict[str, Any]:
    """Parse a JSON or YAML file (by extension; YAML otherwise, which also reads JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise CliError(f"{path} is not valid JSON/YAML: {error}", EXIT_INVALID) from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold one object (a mapping)", EXIT_INVALID)
    return data


def prefix_enum(value: Any, prefix: str) -> Any:
    """Let files say `string` where the contract says `ATTRIBUTE_TYPE_STRING`."""
    if isinstance(value, str) and not value.upper().startswith(prefix):
        return f"{prefix}{value.upper()}"
    return value.upper() if isinstance(value, str) else value


def to_message(data: dict[str, Any], message: M, source: Path) -> M:
    """Fill `message` from `data`, naming the file and field on a mismatch."""
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as error:
        raise CliError(f"{source}: {error}", EXIT_INVALID) from None
    return message
