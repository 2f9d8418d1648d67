"""The OpenAPI description covers the application exactly: no route undescribed, none extra."""

from __future__ import annotations

from typing import cast

import asyncpg
import httpx
import yaml
from starlette.applications import Starlette
from starlette.routing import Route

from services.public import openapi
from services.public.app import create_app
from services.public.signer_client import SignerClient


def _unconnected_app() -> Starlette:
    """The application with neither database nor signer: its routes are fixed at creation,
    and the routes these tests call reach neither."""
    signer = SignerClient(cast(httpx.AsyncClient, None), None)
    return create_app(cast(asyncpg.Pool, None), "http://public.test", signer=signer)


def app_operations() -> set[tuple[str, str]]:
    """Every (path, method) the application routes (HEAD comes with GET)."""
    routes = _unconnected_app().routes
    # Only plain routes: a mount's inner routes would escape this comparison.
    assert all(isinstance(route, Route) for route in routes)
    return {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_of_the_app_is_described_and_nothing_else() -> None:
    spec = openapi.load()
    described = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    assert spec["openapi"].startswith("3.1")
    assert app_operations() == described


def test_every_error_response_names_its_codes() -> None:
    spec = openapi.load()
    responses = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = responses[response["$ref"].rsplit("/", 1)[1]]
                if int(status) < 400:
                    continue
                if set(response["content"]) == {"text/html"}:
                    # A page a browser shows (the revoked certificate's), not an API error.
                    assert "application/pdf" in operation["responses"]["200"]["content"]
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema["$ref"] == "#/components/schemas/Error", (path, method, status)
                assert schema["x-error-codes"], (path, method, status)


async def test_the_description_is_served_as_written() -> None:
    transport = httpx.ASGITransport(app=_unconnected_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as client:
        response = await client.get(openapi.PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/yaml"
    assert yaml.safe_load(response.content) == openapi.load()
