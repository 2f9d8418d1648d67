"""The public endpoints' OpenAPI 3.1 description (``openapi.yaml``), served as written.

The file is the contract integrators and the tests read: the tests check every route of the
application appears in it and fuzz each operation it describes, so it cannot drift silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

PATH = "/openapi.yaml"
FILE = Path(__file__).parent / "openapi.yaml"
_TEXT = FILE.read_bytes()


def load() -> dict[str, Any]:
    """The description as data."""
    spec: dict[str, Any] = yaml.safe_load(_TEXT)
    return spec


async def document(request: Request) -> Response:
    """The description (the same for every client, so caches may keep it)."""
    return Response(
        _TEXT, media_type="application/yaml", headers={"Cache-Control": "public, max-age=3600"}
    )
