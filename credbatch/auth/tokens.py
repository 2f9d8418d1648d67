"""Verify caller tokens (and mint development ones).

The algorithm is pinned by configuration and never taken from the token header; issuer,
audience, expiry and the token's lifetime are always checked. Keys: an HS256 shared secret
(development) or a JWKS read from a file or URL (production).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt

from credbatch.auth.roles import ALL_ROLES
from credbatch.auth.verified import VerifiedToken, VerifiedTokens, token_digest
from credbatch.config import ConfigError, Settings, check_jwks_location
from credbatch.errors import Unauthenticated
from credbatch.tenancy import TenantScope

_JWKS_REFRESH_SECONDS = 300.0
_JWKS_RETRY_SECONDS = 10.0
"""After a failed refresh, the next attempt waits this long: a JWKS endpoint that is down
must not add its connect timeout to every request."""
_JWKS_FETCH_TIMEOUT = 5.0

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@contextmanager
def _short_dev_secret_allowed() -> Iterator[None]:
    # The documented development secret is shorter than RFC 7518 recommends; production
    # refuses it and requires at least 32 bytes (credbatch.config), so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        yield


class _JwksSource:
    """Keys by kid from a JWKS file or URL, refreshed periodically and on an unknown kid.

    While a refresh fails, the keys of the last good fetch keep verifying tokens for up to
    ``stale_seconds`` after that fetch (an identity provider's outage must not log every
    caller out at once); after that, every token is refused until a fetch succeeds. A
    document over ``max_bytes`` is refused unread: a JWKS is a few keys, and a huge answer
    would otherwise be parsed in memory on every refresh.
    """

    def __init__(
        self,
        location: str,
        *,
        stale_seconds: float,
        max_bytes: int,
        refresh_seconds: float = _JWKS_REFRESH_SECONDS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._location = location
        self._stale_seconds = stale_seconds
        self._max_bytes = max_bytes
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None  # last successful fetch
        self._next_attempt = 0.0
        self._lock = asyncio.Lock()

    def _read_bounded(self) -> bytes:
        if self._location.startswith(("http://", "https://")):
            with urllib.request.urlopen(  # noqa: S310 - the scheme is checked above
                self._location, timeout=_JWKS_FETCH_TIMEOUT
            ) as response:
                body: bytes = response.read(self._max_bytes + 1)
        else:
            path = Path(self._location.removeprefix("file://"))
            with path.open("rb") as file:
                body = file.read(self._max_bytes + 1)
        if len(body) > self._max_bytes:
            raise ValueError(f"the JWKS is larger than {self._max_bytes} bytes")
        return body

    def _read(self) -> dict[str, jwt.PyJWK]:
        document = json.loads(self._read_bounded())
        keys = jwt.PyJWKSet.from_dict(document).keys
        return {str(key.key_id): key for key in keys if key.key_id}

    def _usable(self, now: float) -> bool:
        return self._loaded_at is not None and now - self._loaded_at <= self._stale_seconds

    async def _refresh(self) -> None:
        now = self._clock()
        if now < self._next_attempt:
            return
        try:
            keys = await asyncio.to_thread(self._read)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            self._next_attempt = now + _JWKS_RETRY_SECONDS
            log.warning("JWKS refresh failed (%s); cached keys stay usable", type(exc).__name__)
            return
        self._keys = keys
        self._loaded_at = self._clock()
        # An unknown kid may refresh again soon, but never more than once a second.
        self._next_attempt = self._loaded_at + 1.0

    async def key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        due = self._loaded_at is None or now - self._loaded_at > self._refresh_seconds
        if due or kid not in self._keys:
            async with self._lock:
                await self._refresh()
        if not self._usable(self._clock()):
            raise Unauthenticated("token keys are unavailable", reason="JWKS_UNAVAILABLE")
        if kid not in self._keys:
            raise Unauthenticated("token signed with an unknown key", reason="UNKNOWN_KEY")
        return self._keys[kid]


class TokenVerifier:
    """Turns an `authorization: Bearer` token into the caller's TenantScope."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        verified: VerifiedTokens | None = None,
    ) -> None:
        if settings.jwks_url:
            check_jwks_location(settings.mode, settings.jwks_url)
            self._jwks: _JwksSource | None = _JwksSource(
                settings.jwks_url,
                stale_seconds=settings.jwks_stale_seconds,
                max_bytes=settings.jwks_max_bytes,
                clock=clock,
            )
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
        self._max_lifetime = settings.jwt_max_lifetime
        self._wall_clock = wall_clock
        self._verified = verified if verified is not None else VerifiedTokens()

    async def _key(self, kid: str) -> Any:
        if self._jwks is not None:
            return await self._jwks.key(kid)
        return self._secret

    async def verify(self, token: str) -> TenantScope:
        """The caller ``token`` names, once it is verified (or was, with the same key, and
        has not expired since: ``credbatch.auth.verified``).

        Raises:
            Unauthenticated: the token is refused; ``reason`` says why.
        """
        digest = token_digest(token)
        known = self._verified.get(digest, self._wall_clock())
        if known is not None:
            # Asked every time: a key source past its stale window, or without the key any
            # more, refuses the token here as it would a token never seen.
            if await self._key(known.kid) is known.key:
                return known.caller
            self._verified.forget(digest)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token", reason="INVALID_TOKEN") from None
        if header.get("alg") != self._algorithm:
            raise Unauthenticated(
                f"token algorithm must be {self._algorithm}", reason="INVALID_TOKEN"
            )
        kid = str(header.get("kid", ""))
        key = await self._key(kid)
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
        self._check_lifetime(claims)
        caller = claims_to_scope(claims)
        self._verified.put(
            digest, VerifiedToken(caller, float(claims["exp"]), kid, key), self._wall_clock()
        )
        return caller

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """Refuse a token valid for longer than CREDBATCH_JWT_MAX_LIFETIME.

        A stolen long-lived token is a standing key to the tenant. With ``iat`` the lifetime
        is ``exp - iat``; without it, what is left (``exp - now``) must fit, so leaving out
        ``iat`` never buys a longer token.
        """
        start = claims.get("iat")
        if start is None:
            start = time.time()
        if float(claims["exp"]) - float(start) > self._max_lifetime:
            raise Unauthenticated(
                f"token lifetime is longer than {int(self._max_lifetime)} seconds",
                reason="TOKEN_LIFETIME_TOO_LONG",
            )


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
    # No claim, or an empty list, means no department at all: falling back to a default one
    # would show an observer that department's batches without anyone granting them.
    departments = claims.get("departments")
    if departments is None:
        departments = []
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
