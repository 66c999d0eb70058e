"""Fixtures for the HTTP API tests (helpers live in api_support.py).

API tests get their own namespace on the session's dev server: incident numbers are
allocated per data dir, so sharing a namespace with other suites could mix up INC ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from tests.api.api_support import ApiEnv, api_policy, running_api


@pytest.fixture(scope="session")
async def api_env(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiEnv]:
    data = tmp_path_factory.mktemp("api-data")
    async with running_api(dev_env, api_policy(default_policy), data, "api") as env:
        yield env


@pytest.fixture
async def http(api_env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_env.url, timeout=30) as client:
        yield client


@pytest.fixture
def api_headers(api_env: ApiEnv) -> dict[str, str]:
    return api_env.stack.api_headers()
