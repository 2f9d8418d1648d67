"""Shared fixtures: each tier registers its own fixture module here."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.amqp",
    "tests.fixtures.tracing",
    "tests.fixtures.grpc",
    "tests.fixtures.relay",
    "tests.fixtures.templates",
    "tests.fixtures.issuance",
    "tests.fixtures.dispatch",
]
