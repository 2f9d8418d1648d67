"""Settings of bounces and delivery receipts, read and checked together.

A bounce domain is useless without the key that makes its addresses unforgeable, but only the
processes that address mail (the issuance workers) or receive bounces (``services.bounces``)
need the key: the others share the domain through the common configuration and are never
given the key. So a domain without a key is an error where it is used (``bounce_identity``),
and a key that is given must be strong everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

from credbatch.env_values import ConfigError, env_int

if TYPE_CHECKING:
    from credbatch.config import Settings

BOUNCE_KEY_MIN_BYTES = 32


_KEY_NEEDED = (
    f"CREDBATCH_BOUNCE_KEY must be at least {BOUNCE_KEY_MIN_BYTES} random bytes, the same for "
    "the issuance workers and every bounce receiver"
)


class BounceSettings(TypedDict):
    bounce_domain: str | None
    bounce_key: str | None
    bounce_port: int
    bounce_max_bytes: int


def bounce_settings(env: Mapping[str, str], defaults: Settings) -> BounceSettings:
    """The bounce fields of ``Settings``, from ``env`` or ``defaults``.

    Raises:
        ConfigError: a key under 32 bytes, or a malformed domain, naming the variable.
    """
    domain = (env.get("CREDBATCH_BOUNCE_DOMAIN") or "").strip().lower() or None
    key = env.get("CREDBATCH_BOUNCE_KEY") or None
    if domain is not None:
        labels = domain.split(".")
        if len(domain) > 200 or not all(
            label and label.replace("-", "").isalnum() and label.isascii() for label in labels
        ):
            raise ConfigError(f"CREDBATCH_BOUNCE_DOMAIN is not a domain name: {domain!r}")
    if key is not None and len(key.encode()) < BOUNCE_KEY_MIN_BYTES:
        raise ConfigError(_KEY_NEEDED)
    return {
        "bounce_domain": domain,
        "bounce_key": key,
        "bounce_port": env_int(env, "CREDBATCH_BOUNCE_PORT", defaults.bounce_port, 0),
        "bounce_max_bytes": env_int(
            env, "CREDBATCH_BOUNCE_MAX_BYTES", defaults.bounce_max_bytes, 1024
        ),
    }


def bounce_identity(settings: Settings) -> tuple[bytes, str] | None:
    """The bounce key and domain, or None when no bounce domain is configured.

    Raises:
        ConfigError: a bounce domain without its key.
    """
    if settings.bounce_domain is None:
        return None
    if settings.bounce_key is None:
        raise ConfigError(f"CREDBATCH_BOUNCE_DOMAIN is set: {_KEY_NEEDED}")
    return settings.bounce_key.encode(), settings.bounce_domain
