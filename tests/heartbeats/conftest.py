"""The heartbeat API tests run the real API and a real worker (``ApiStack``, as the API tests
do) on the session's dev server, in a namespace of their own, with a policy that defines
heartbeat monitors: NIGHTLY, GUARDED (only ever sent wrong credentials) and 50 for load."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from domain.policy import HeartbeatMonitor, Policy, Severity
from starter import cli
from starter.api.context import ApiSettings
from tests.api.api_support import ApiEnv, ApiStack, register_namespace
from tests.heartbeats.support import NIGHTLY, with_heartbeats

GUARDED = HeartbeatMonitor(
    name="guarded-job", period=timedelta(hours=1), service="api", severity=Severity.P1
)
LOAD = tuple(
    HeartbeatMonitor(
        name=f"load-{i:02d}",
        period=timedelta(hours=1),
        grace=timedelta(minutes=10),
        service="batch",
    )
    for i in range(50)
)

Run = Callable[..., Result]


@pytest.fixture(scope="session")
async def beats_env(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiEnv]:
    namespace = f"fw-beats-{uuid.uuid4().hex[:8]}"
    client = await register_namespace(dev_env, namespace)
    stack = ApiStack(
        target=dev_env.client.service_client.config.target_host,
        namespace=namespace,
        policy=with_heartbeats(default_policy, NIGHTLY, GUARDED, *LOAD),
        data=tmp_path_factory.mktemp("beats-data"),
        settings=ApiSettings(task_queue=f"fw-beats-{uuid.uuid4().hex[:8]}", worker_timeout_s=15),
    )
    await asyncio.to_thread(stack.start)
    try:
        yield ApiEnv(stack=stack, client=client)
    finally:
        await asyncio.to_thread(stack.stop)


@pytest.fixture
async def http(beats_env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=beats_env.url, timeout=30) as client:
        yield client


def token(env: ApiEnv, name: str) -> str:
    value = env.stack.secrets().for_heartbeat(name)
    assert value is not None, name
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def firewatch(beats_env: ApiEnv, tmp_path: Path) -> Iterator[Run]:
    runner = CliRunner()
    env = {
        "FIREWATCH_API_URL": beats_env.url,
        "FIREWATCH_API_TOKEN": beats_env.stack.secrets().api_token,
        "FIREWATCH_DATA_DIR": str(tmp_path),
        "FIREWATCH_USER": None,
    }

    def invoke(*args: str) -> Result:
        result = runner.invoke(cli.app, list(args), env=env)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    yield invoke
