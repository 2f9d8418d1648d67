"""`make run` gives every process its own metrics port, or none with CREDBATCH_METRICS_PORT=0,
and the processes without a gRPC API their own health port."""

from __future__ import annotations

from credbatch.config import Settings
from credbatch.devrun import (
    DEV_BOUNCE_DOMAIN,
    components,
    describe,
    metrics_env,
    with_bounces,
    with_nonce_key,
)


def test_each_process_has_its_documented_metrics_port() -> None:
    ports = {c.name: c.metrics_port for c in components(with_bounces(Settings()), workers=3)}
    assert ports == {
        "bounces": 9108,
        "smtp-sink": 0,
        "sms-sink": 0,
        "templates": 9101,
        "uploads": 9102,
        "batch_status": 9103,
        "signer": 9107,
        "public": 9104,
        "webhooks": 9106,
        "tenants": 9109,
        "relay": 9105,
        "hooks-dispatch": 9121,
        "worker-1": 9111,
        "worker-2": 9112,
        "worker-3": 9113,
    }


def test_the_environment_carries_the_port_unless_metrics_are_off() -> None:
    by_name = {c.name: c for c in components(Settings(), workers=1)}
    assert metrics_env(by_name["relay"], {})["CREDBATCH_METRICS_PORT"] == "9105"
    assert metrics_env(by_name["worker-1"], {"CREDBATCH_METRICS_PORT": "7000"}) == {
        "CREDBATCH_METRICS_PORT": "9111",
        "CREDBATCH_HEALTH_PORT": "9211",
    }
    off = {"CREDBATCH_METRICS_PORT": "0"}
    assert metrics_env(by_name["templates"], off) == off
    assert "CREDBATCH_METRICS_PORT" not in metrics_env(by_name["smtp-sink"], {})


def test_relay_dispatcher_and_workers_have_their_documented_health_ports() -> None:
    ports = {c.name: c.health_port for c in components(Settings(), workers=2) if c.health_port}
    assert ports == {"relay": 9205, "hooks-dispatch": 9221, "worker-1": 9211, "worker-2": 9212}
    by_name = {c.name: c for c in components(Settings(), workers=1)}
    # Kept when metrics are off: health is not a metric.
    off = {"CREDBATCH_METRICS_PORT": "0"}
    assert metrics_env(by_name["worker-1"], off)["CREDBATCH_HEALTH_PORT"] == "9211"
    assert "CREDBATCH_HEALTH_PORT" not in metrics_env(by_name["templates"], {})
    assert describe(by_name["relay"], "127.0.0.1", True) == (
        "grpc health 127.0.0.1:9205, metrics http://127.0.0.1:9105/metrics"
    )


def test_only_the_public_process_gets_the_nonce_key_drawn_for_the_run_unless_given() -> None:
    def nonce_keys(settings: Settings) -> dict[str, str]:
        return {
            c.name: dict(c.env)["CREDBATCH_NONCE_KEY"]
            for c in components(settings, workers=1)
            if "CREDBATCH_NONCE_KEY" in dict(c.env)
        }

    drawn = with_nonce_key(Settings())
    assert drawn.nonce_key is not None and len(drawn.nonce_key.encode()) >= 32
    assert nonce_keys(drawn) == {"public": drawn.nonce_key}
    assert with_nonce_key(Settings()).nonce_key != drawn.nonce_key
    given = Settings(nonce_key="n" * 40)
    assert with_nonce_key(given) is given and nonce_keys(given) == {"public": "n" * 40}


def test_make_run_starts_the_bounce_receiver_and_points_the_sinks_at_it() -> None:
    settings = with_bounces(Settings())
    assert settings.bounce_domain == DEV_BOUNCE_DOMAIN and settings.bounce_key
    # A key given (or a domain of one's own) is kept.
    assert with_bounces(settings).bounce_key == settings.bounce_key
    by_name = {c.name: c for c in components(settings, workers=1)}
    assert "smtp 127.0.0.1:2525" in by_name["bounces"].listens
    smtp_args = by_name["smtp-sink"].args
    assert smtp_args[smtp_args.index("--report-to") + 1] == "127.0.0.1:2525"
    assert dict(by_name["bounces"].env) == {
        "CREDBATCH_PUBLIC_DATABASE_URL": settings.public_database_url
    }
    # Without a bounce domain nothing receives bounces, and the sinks send none.
    plain = {c.name: c for c in components(Settings(), workers=1)}
    assert "bounces" not in plain and "--report-to" not in plain["smtp-sink"].args
