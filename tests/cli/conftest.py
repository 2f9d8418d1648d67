"""The running system and the test organisation, started once for the CLI tests' package."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.fixtures.cli_org import Org, create_org
from tests.fixtures.cli_system import System, running_system


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    async with running_system(tmp_path_factory.mktemp("credbatch-system")) as running:
        yield running


@pytest.fixture(scope="package")
def org(system: System, tmp_path_factory: pytest.TempPathFactory) -> Org:
    return create_org(system, tmp_path_factory.mktemp("org"))
