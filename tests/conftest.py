"""Shared fixtures (each tier registers its own fixture module here) and the test tiers.

A test is ``integration`` when it needs something outside the test process: PostgreSQL,
RabbitMQ, the SMTP and SMS sinks the workers send to, or child processes. ``make test-unit``
runs the rest alone (``-m "not integration"``); ``make test`` runs everything.
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.amqp",
    "tests.fixtures.tracing",
    "tests.fixtures.grpc",
    "tests.fixtures.relay",
    "tests.fixtures.templates",
    "tests.fixtures.rendering",
    "tests.fixtures.issuance",
    "tests.fixtures.dispatch",
]

# The fixtures that reach outside the process: db_settings creates the test database and
# every pool, setting and stub is built on it; amqp_url and fresh_amqp_url make vhosts with
# rabbitmqctl; sinks is the workers' SMTP and SMS; system (tests/cli) starts the whole system
# as child processes; render_pool starts render processes. pytest puts a test's whole fixture
# closure in item.fixturenames, so a test using app_pool, settings or any stub is caught
# through the fixture it rests on.
INTEGRATION_FIXTURES = frozenset(
    {"db_settings", "amqp_url", "fresh_amqp_url", "sinks", "system", "render_pool"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test whose fixtures reach PostgreSQL, RabbitMQ, SMTP or
    child processes; tests that do so without such a fixture carry the marker themselves."""
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
