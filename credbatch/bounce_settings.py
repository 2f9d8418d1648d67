"""Settings of bounces and delivery receipts, read and checked together: a bounce domain is
useless without the key that makes its addresses unforgeable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypedDict

from credbatch.env_values import ConfigError, env_int

if TYPE_CHECKING:
    from credbatch.config import Settings

BOUNCE_KEY_MIN_BYTES = 32


class BounceSettings(TypedDict):
    bounce_domain: str | None
    bounce_key: str | None
    bounce_port: int
    bounce_max_bytes: int


def bounce_settings(env: Mapping[str, str], defaults: Settings) -> BounceSettings:
    """The bounce fields of ``Settings``, from ``env`` or ``defaults``.

    Raises:
        ConfigError: a bounce domain without a key of at least 32 bytes, or a malformed
            domain, naming the variable.
    """
    domain = (env.get("CREDBATCH_BOUNCE_DOMAIN") or "").strip().lower() or None
    key = env.get("CREDBATCH_BOUNCE_KEY") or None
    if domain is not None:
        labels = domain.split(".")
        if len(domain) > 200 or not all(
            label and label.replace("-", "").isalnum() and label.isascii() for label in labels
        ):
            raise ConfigError(f"CREDBATCH_BOUNCE_DOMAIN is not a domain name: {domain!r}")
        if key is None or len(key.encode()) < BOUNCE_KEY_MIN_BYTES:
            raise ConfigError(
                "CREDBATCH_BOUNCE_KEY is required with CREDBATCH_BOUNCE_DOMAIN (at least "
                f"{BOUNCE_KEY_MIN_BYTES} random bytes, the same for the issuance workers and "
                "every bounce receiver)"
            )
    return {
        "bounce_domain": domain,
        "bounce_key": key,
        "bounce_port": env_int(env, "CREDBATCH_BOUNCE_PORT", defaults.bounce_port, 0),
        "bounce_max_bytes": env_int(
            env, "CREDBATCH_BOUNCE_MAX_BYTES", defaults.bounce_max_bytes, 1024
        ),
    }
