"""Tenants for the TemplateService tests (the service itself: tests.fixtures.templates)."""

from __future__ import annotations

import pytest

from credbatch.config import Settings
from tests.fixtures.templates import Tenant, make_tenant


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    return make_tenant(settings)


@pytest.fixture
def other_tenant(settings: Settings) -> Tenant:
    return make_tenant(settings)
