"""Hostile requests to every operation of the OpenAPI description: never a 5xx, always the
documented status and error code.

Hypothesis builds each request from the description (``services/public/openapi.yaml``): a
path of any described operation with its parameters drawn from real ids of a live world
(a tenant with an offer and its access token, a download batch's claim token, certificate
and status list) and from hostile text (NUL, slashes, dot segments, non-ASCII, 5,000
characters); any method; bodies that are empty, random bytes, oversized, forms of known and
unknown parameters, JSON of any shape, and credential requests whose key proofs carry
malformed headers and keys. The application is the real one on the real PostgreSQL, each
side on its own role. Every answer must be below 500 and documented for the route it
reached: its status among the operation's responses, its error code among that response's
``x-error-codes``, with a non-empty ``error_description``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import asyncpg
import httpx
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

from services.public import openapi
from tests.security.public_world import issue_one, worker_side
from tests.services.public.oid4vci_world import (
    PRE_AUTHORIZED,
    Offered,
    Wallet,
    client_of,
    offer_one,
    oid4vci_app,
)

SPEC = openapi.load()
OPERATIONS = [
    (path, method.upper())
    for path, item in SPEC["paths"].items()
    for method in item
    if method in {"get", "post", "put", "delete", "patch"}
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


@dataclass(frozen=True)
class World:
    app: Starlette
    offered: Offered
    access_token: str
    ids: dict[str, list[str]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    app_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    signer_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
) -> AsyncIterator[World]:
    offered = await offer_one(app_pool)
    keys, signer = worker_side(app_pool)
    issued = await issue_one(app_pool, keys, signer)
    app = oid4vci_app(public_pool, signer_pool)
    async with client_of(app) as client:
        access_token = await Wallet(client, offered).access_token()
    wallet_claim = await owner_pool.fetchval(
        "SELECT claim_token FROM credentials WHERE record_id = $1", offered.record_id
    )
    ids = {
        "tenant": [str(offered.tenant_id), str(issued.tenant_id)],
        "code": [offered.code],
        "token": [issued.claim_token, wallet_claim],
        "id": [issued.certificate_id],
        "list_id": [str(issued.list_id)],
    }
    yield World(app, offered, access_token, ids)


_hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("\x00/.%\\?#&=+ é\u202e\ufeffa1-_"), max_size=12),
    st.sampled_from(["", ".", "..", "%00", "%2e%2e", "null", "-1", "0" * 5000]),
    st.uuids().map(str),
)


# What a header value may hold on the wire (httpx sends nothing else).
_HEADER_CHARACTERS = st.characters(min_codepoint=32, max_codepoint=126)


def _mutated(real: list[str]) -> st.SearchStrategy[str]:
    """A real id with one character replaced or inserted: still well-formed enough to pass
    a shape check, so it reaches the lookup behind it."""
    return st.tuples(
        st.sampled_from(real), st.integers(0, 60), st.sampled_from("\x00 %/.=+\né"), st.booleans()
    ).map(lambda m: m[0][: m[1]] + m[2] + m[0][m[1] + (0 if m[3] else 1) :])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)

# Key proofs as a careless or hostile wallet builds them: any subset of a JWK's members,
# wrong types, and header and payload members of any kind.
_jwk = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "y", "d", "kid", "n", "e"]),
    st.one_of(
        st.sampled_from(["EC", "P-256", "RSA", "OKP", ""]),
        st.binary(max_size=40).map(_b64),
        _json_value,
    ),
)
_proof_header = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ES256", "none", "HS256", "EdDSA"]) | _json_value,
        "typ": st.sampled_from(["openid4vci-proof+jwt", "JWT"]) | _json_value,
        "jwk": _jwk | _json_value,
        "kid": st.text(max_size=10),
        "x5c": _json_value,
    },
)
_proof_payload = st.fixed_dictionaries(
    {},
    optional={
        "aud": st.text(max_size=20) | _json_value,
        "iat": st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _json_value,
        "nonce": st.text(max_size=20) | _json_value,
    },
)


def _compact(parts: tuple[dict[str, Any], dict[str, Any], bytes]) -> str:
    header, payload, signature = parts
    return ".".join(
        (_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature))
    )


# A wallet's real key with members dropped or replaced: the malformed keys that pass the
# first checks and reach the key's decoding.
_REAL_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
_DROPPED = object()


def _member(value: str) -> st.SearchStrategy[Any]:
    """The member as it was, dropped, or replaced by any JSON value."""
    return st.just(value) | st.just(_DROPPED) | _json_value


_near_jwk = st.fixed_dictionaries({name: _member(value) for name, value in _REAL_JWK.items()}).map(
    lambda jwk: {k: v for k, v in jwk.items() if v is not _DROPPED}
)
_near_proof = st.tuples(
    st.builds(lambda jwk: {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": jwk}, _near_jwk),
    _proof_payload,
    st.binary(min_size=64, max_size=64),
).map(_compact)
_proof = st.one_of(
    st.tuples(_proof_header, _proof_payload, st.binary(max_size=70)).map(_compact),
    _near_proof,
    st.text(max_size=30),
    _json_value,
)


@st.composite
def _credential_request(draw: st.DrawFn, configuration_id: str) -> dict[str, Any]:
    request: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), _json_value, max_size=2))
    if draw(st.booleans()):
        request["credential_configuration_id"] = draw(
            st.sampled_from([configuration_id, "nope"]) | _json_value
        )
    shape = draw(st.sampled_from(["proofs", "proof", "both", "none"]))
    if shape in ("proofs", "both"):
        request["proofs"] = draw(
            st.one_of(
                st.lists(_proof, max_size=2).map(lambda jwts: {"jwt": jwts}),
                _json_value,
            )
        )
    if shape in ("proof", "both"):
        request["proof"] = draw(
            st.one_of(
                _proof.map(lambda jwt: {"proof_type": "jwt", "jwt": jwt}),
                _json_value,
            )
        )
    return request


@st.composite
def _body(draw: st.DrawFn, world: World) -> tuple[bytes, str | None]:
    """A body and its Content-Type (None: no header)."""
    offered = world.offered
    kind = draw(st.sampled_from(["empty", "bytes", "huge", "form", "json", "credential"]))
    form_type = "application/x-www-form-urlencoded"
    content_type = draw(
        st.sampled_from([form_type, "application/json", "text/plain", None])
        | st.text(alphabet=_HEADER_CHARACTERS, max_size=30)
    )
    if kind == "empty":
        return b"", content_type
    if kind == "bytes":
        return draw(st.binary(max_size=500)), content_type
    if kind == "huge":
        return b"a=" + b"b" * draw(st.sampled_from([4100, 70_000, 300_000])), content_type
    if kind == "form":
        names = st.sampled_from(["grant_type", "pre-authorized_code", "tx_code"]) | st.text(
            max_size=10
        )
        values = st.sampled_from(
            [PRE_AUTHORIZED, offered.code, offered.link.tx_code or "", "authorization_code"]
        ) | st.text(max_size=30)
        pairs = draw(st.lists(st.tuples(names, values), max_size=5))
        raw = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
        if draw(st.booleans()):
            raw = "&".join(f"{k}={v}" for k, v in pairs)  # unencoded, as a sloppy client sends
        return raw.encode("utf-8", "surrogatepass"), form_type
    if kind == "json":
        return json.dumps(draw(_json_value)).encode(), "application/json"
    request = draw(_credential_request(offered.configuration_id))
    return json.dumps(request).encode(), "application/json"


@st.composite
def _request(draw: st.DrawFn, world: World) -> httpx.Request:
    path, method = draw(st.sampled_from(OPERATIONS))
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(METHODS))

    def segment(match: re.Match[str]) -> str:
        real = world.ids.get(match.group(1), [])
        value = draw(
            st.sampled_from(real) | _mutated(real) | _hostile_text if real else _hostile_text
        )
        return quote(value.encode("utf-8", "surrogatepass"), safe="")

    url = re.sub(r"\{(\w+)\}", segment, path)
    headers: dict[str, str] = {}
    body, content_type = draw(_body(world))
    if content_type is not None:
        headers["Content-Type"] = content_type
    authorization = draw(
        st.sampled_from(
            [None, f"Bearer {world.access_token}", "Bearer ", "Basic eDp5", "bearer  x y"]
        )
        | st.text(alphabet=_HEADER_CHARACTERS, max_size=40)
    )
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.Request(method, "http://public.test" + url, headers=headers, content=body)


def _route_of(app: Starlette, path: str) -> Route | None:
    """The route Starlette matches ``path`` (percent-decoded, as Starlette matches it)."""
    decoded = unquote(path)
    for route in app.routes:
        if isinstance(route, Route) and route.path_regex.match(decoded):
            return route
    return None


def _documented(status: int, path: str | None, method: str) -> dict[str, Any]:
    """The response object the description gives for ``status`` there."""
    responses = SPEC["components"]["responses"]
    if path is None:
        assert status == 404, f"{status} for a path matching no route"
        return dict(responses["NotFound"])
    item = SPEC["paths"][path]
    described = item.get("get" if method == "HEAD" else method.lower())
    if described is None:
        assert status == 405, f"{status} for {method} {path}, which {method} does not reach"
        return dict(responses["MethodNotAllowed"])
    response = described["responses"].get(str(status))
    assert response is not None, f"{status} is not documented for {method} {path}"
    if "$ref" in response:
        response = responses[response["$ref"].rsplit("/", 1)[1]]
    return dict(response)


def _check(app: Starlette, request: httpx.Request, response: httpx.Response) -> None:
    where = f"{request.method} {request.url.raw_path.decode()[:200]}"
    assert response.status_code < 500, (where, response.status_code, response.text[:500])
    path = request.url.raw_path.decode().split("?", 1)[0]
    if response.status_code == 307:
        # Starlette's redirect of a trailing slash, as the description's summary says.
        assert unquote(path).endswith("/") and response.headers["location"], where
        return
    route = _route_of(app, path)
    documented = _documented(response.status_code, route.path if route else None, request.method)
    if request.method == "HEAD":
        return
    media_type = response.headers.get("content-type", "").split(";")[0]
    assert media_type in documented["content"], (where, response.status_code, media_type)
    if response.status_code >= 400:
        body = response.json()
        schema = documented["content"]["application/json"]["schema"]
        assert body["error"] in schema["x-error-codes"], (where, body)
        assert isinstance(body["error_description"], str) and body["error_description"], body


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_request_gets_a_server_error_or_an_undocumented_answer(
    world: World, data: st.DataObject
) -> None:
    request = data.draw(_request(world))
    transport = httpx.ASGITransport(app=world.app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.send(request)
    event(f"{request.method} {response.status_code}")
    _check(world.app, request, response)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_credential_requests_with_a_live_token_get_no_server_error(
    world: World, data: st.DataObject
) -> None:
    """Past the access token check, where the request's JSON and its proofs are parsed."""
    offered = world.offered
    body = data.draw(
        _credential_request(offered.configuration_id)
        | st.builds(
            lambda proof, singular: (
                {"credential_configuration_id": offered.configuration_id}
                | ({"proof": {"proof_type": "jwt", "jwt": proof}} if singular else {})
                | ({} if singular else {"proofs": {"jwt": [proof]}})
            ),
            _near_proof | _proof,
            st.booleans(),
        )
    )
    request = httpx.Request(
        "POST",
        f"http://public.test/tenants/{offered.tenant_id}/credential",
        headers={"Authorization": f"Bearer {world.access_token}"},
        content=json.dumps(body).encode(),
    )
    transport = httpx.ASGITransport(app=world.app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.send(request)
    event(f"{response.status_code} {response.json().get('error')}")
    _check(world.app, request, response)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_token_requests_get_no_server_error(world: World, data: st.DataObject) -> None:
    """Forms of known and unknown parameters at a live tenant's token endpoint."""
    body, content_type = data.draw(_body(world))
    request = httpx.Request(
        "POST",
        f"http://public.test/tenants/{world.offered.tenant_id}/token",
        headers={"Content-Type": content_type or "application/x-www-form-urlencoded"},
        content=body,
    )
    transport = httpx.ASGITransport(app=world.app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.send(request)
    event(f"{response.status_code} {response.json().get('error')}")
    _check(world.app, request, response)
