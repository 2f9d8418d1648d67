"""Typed values read from environment variables; every error names the variable."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from urllib.parse import urlsplit, urlunsplit


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


def derive_role_url(owner_url: str, role: str) -> str:
    """The owner's URL with ``role`` as the user and no password (the default of a role URL)."""
    parts = urlsplit(owner_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{role}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def env_int(
    env: Mapping[str, str], key: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key} must be at most {maximum}, got {value}")
    return value


def env_float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None


def env_positive(env: Mapping[str, str], key: str, default: float) -> float:
    value = env_float(env, key, default)
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {value}")
    return value


def env_optional_positive(env: Mapping[str, str], key: str) -> float | None:
    """A positive number, or None when unset (= unlimited)."""
    raw = env.get(key)
    if raw is None or raw == "":
        return None
    value = env_float(env, key, 0.0)
    if not value > 0:
        raise ConfigError(f"{key} must be a positive number, got {raw!r}")
    return value


def env_optional_count(env: Mapping[str, str], key: str) -> int | None:
    """A non-negative integer, or None when unset (= unlimited)."""
    raw = env.get(key)
    if raw is None or raw == "":
        return None
    return env_int(env, key, 0, 0)


def env_float_list(
    env: Mapping[str, str], key: str, default: tuple[float, ...]
) -> tuple[float, ...]:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{key} must be a comma-separated list of seconds, got {raw!r}") from None
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{key} must list at least one positive delay, got {raw!r}")
    return values


def env_switch(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{key} must be on or off, got {raw!r}")


Network = IPv4Network | IPv6Network


def env_networks(env: Mapping[str, str], key: str) -> tuple[Network, ...]:
    """A comma-separated list of CIDR networks (a bare address is its own /32 or /128);
    empty or unset = none. Each entry must be a network address: ``10.0.0.1/8`` (host bits
    set) is refused as the typo it usually is. IPv4-mapped IPv6 networks are read as the
    IPv4 networks they map, since clients are compared in that form."""
    raw = env.get(key) or ""
    networks: list[Network] = []
    for position, entry in enumerate(raw.split(","), start=1):
        text = entry.strip()
        if not text:
            continue
        try:
            network = ip_network(text)
        except ValueError as error:
            raise ConfigError(
                f"{key}: entry {position} ({text!r}) is not a CIDR network: {error}"
                + _did_you_mean(text)
            ) from None
        networks.append(_unmapped(network))
    return tuple(networks)


def _did_you_mean(text: str) -> str:
    try:
        return f" (did you mean {ip_network(text, strict=False)}?)"
    except ValueError:
        return ""


def _unmapped(network: Network) -> Network:
    if isinstance(network, IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return IPv4Network((mapped, network.prefixlen - 96))
    return network
