"""Fixtures for the HTTP API tests (helpers live in api_support.py).

API tests get their own namespace on the session's dev server: incident numbers are
allocated per data dir, so sharing a namespace with other suites could mix up INC ids.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from starter.api.context import ApiSettings
from tests.api.api_support import ApiEnv, ApiStack, api_policy, register_namespace


@pytest.fixture(scope="session")
async def api_env(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiEnv]:
    namespace = f"fw-api-{uuid.uuid4().hex[:8]}"
    client = await register_namespace(dev_env, namespace)
    stack = ApiStack(
        target=dev_env.client.service_client.config.target_host,
        namespace=namespace,
        policy=api_policy(default_policy),
        data=tmp_path_factory.mktemp("api-data"),
        settings=ApiSettings(task_queue=f"fw-api-{uuid.uuid4().hex[:8]}", worker_timeout_s=15),
    )
    await asyncio.to_thread(stack.start)
    try:
        yield ApiEnv(stack=stack, client=client)
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.fixture
async def http(api_env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_env.url, timeout=30) as client:
        yield client


@pytest.fixture
def api_headers(api_env: ApiEnv) -> dict[str, str]:
    return api_env.stack.api_headers()
