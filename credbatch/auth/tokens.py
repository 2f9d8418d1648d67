"""Verify caller tokens (and mint development ones).

The algorithm is pinned by configuration and never taken from the token header; issuer,
audience and expiry are always checked. Keys: an HS256 shared secret (development) or a JWKS
read from a file or URL (production).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt

from credbatch.auth.roles import ALL_ROLES, DEFAULT_DEPARTMENT
from credbatch.config import ConfigError, Settings
from credbatch.errors import Unauthenticated
from credbatch.tenancy import TenantScope

_JWKS_REFRESH_SECONDS = 300.0


@contextmanager
def _short_dev_secret_allowed() -> Iterator[None]:
    # The documented development secret is shorter than RFC 7518 recommends; production
    # refuses it and requires at least 32 bytes (credbatch.config), so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        yield


class _JwksSource:
    """Keys by kid from a JWKS file or URL, refreshed periodically and on an unknown kid."""

    def __init__(self, location: str) -> None:
        self._location = location
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, jwt.PyJWK]:
        if self._location.startswith(("http://", "https://")):
            with urllib.request.urlopen(self._location, timeout=5) as response:  # noqa: S310
                document = json.loads(response.read())
        else:
            path = self._location.removeprefix("file://")
            document = json.loads(Path(path).read_text())
        keys = jwt.PyJWKSet.from_dict(document).keys
        return {str(key.key_id): key for key in keys if key.key_id}

    async def key(self, kid: str) -> jwt.PyJWK:
        stale = time.monotonic() - self._loaded_at > _JWKS_REFRESH_SECONDS
        if stale or kid not in self._keys:
            async with self._lock:
                if time.monotonic() - self._loaded_at > 1.0:
                    try:
                        self._keys = await asyncio.to_thread(self._read)
                    except (OSError, ValueError, jwt.PyJWTError) as exc:
                        raise Unauthenticated(
                            "token keys are unavailable", reason="JWKS_UNAVAILABLE"
                        ) from exc
                    self._loaded_at = time.monotonic()
        if kid not in self._keys:
            raise Unauthenticated("token signed with an unknown key", reason="UNKNOWN_KEY")
        return self._keys[kid]


class TokenVerifier:
    """Turns an `authorization: Bearer` token into the caller's TenantScope."""

    def __init__(self, settings: Settings) -> None:
        if settings.jwks_url:
            self._jwks: _JwksSource | None = _JwksSource(settings.jwks_url)
            self._secret: str | None = None
        elif settings.jwt_secret:
            self._jwks = None
            self._secret = settings.jwt_secret
        else:
            raise ConfigError("set CREDBATCH_JWKS_URL or CREDBATCH_JWT_SECRET")
        if self._secret is not None and not settings.jwt_algorithm.startswith("HS"):
            raise ConfigError("a shared secret needs an HS* CREDBATCH_JWT_ALGORITHM")
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience

    async def verify(self, token: str) -> TenantScope:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token", reason="INVALID_TOKEN") from None
        if header.get("alg") != self._algorithm:
            raise Unauthenticated(
                f"token algorithm must be {self._algorithm}", reason="INVALID_TOKEN"
            )
        key: Any
        if self._jwks is not None:
            key = await self._jwks.key(str(header.get("kid", "")))
        else:
            key = self._secret
        try:
            with _short_dev_secret_allowed():
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[self._algorithm],
                    audience=self._audience,
                    issuer=self._issuer,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                    leeway=5,
                )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience not accepted", reason="INVALID_TOKEN") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer not accepted", reason="INVALID_TOKEN") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}", reason="INVALID_TOKEN") from None
        return claims_to_scope(claims)


def claims_to_scope(claims: dict[str, Any]) -> TenantScope:
    """Map verified claims to a caller; unknown roles are ignored."""
    try:
        tenant = uuid.UUID(str(claims.get("tenant", "")))
    except ValueError:
        raise Unauthenticated(
            "token claim `tenant` must be a UUID", reason="INVALID_TOKEN"
        ) from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("token claim `sub` is missing", reason="INVALID_TOKEN")
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = roles.split()
    if not isinstance(roles, list):
        raise Unauthenticated("token claim `roles` must be a list", reason="INVALID_TOKEN")
    departments = claims.get("departments") or [DEFAULT_DEPARTMENT]
    if not isinstance(departments, list) or not all(isinstance(d, str) and d for d in departments):
        raise Unauthenticated(
            "token claim `departments` must be a list of names", reason="INVALID_TOKEN"
        )
    return TenantScope(
        tenant_id=tenant,
        user_id=sub,
        roles=frozenset(str(r) for r in roles) & ALL_ROLES,
        departments=tuple(departments),
    )


def mint_dev_token(
    settings: Settings,
    *,
    tenant: uuid.UUID,
    sub: str,
    roles: Sequence[str],
    departments: Sequence[str] = (),
    ttl_seconds: int = 12 * 3600,
) -> str:
    """A token signed with the development shared secret (never for production)."""
    if not settings.jwt_secret:
        raise ConfigError("minting a token needs CREDBATCH_JWT_SECRET")
    unknown = set(roles) - ALL_ROLES
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub,
        "tenant": str(tenant),
        "roles": list(roles),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if departments:
        claims["departments"] = list(departments)
    with _short_dev_secret_allowed():
        return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)
