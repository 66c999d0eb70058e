"""The heartbeat API tests run the real API and a real worker (``ApiStack``, as the API tests
do) on the session's dev server, in a namespace of their own, with a policy that defines
heartbeat monitors: NIGHTLY, GUARDED (only ever sent wrong credentials), SHORT (a 1 s
period, to be missed for real) and 50 for load."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.policy import HeartbeatMonitor, Policy, Severity
from tests.api.api_support import ApiEnv, CliRun, cli_against, running_api
from tests.heartbeats.support import NIGHTLY, with_heartbeats

GUARDED = HeartbeatMonitor(
    name="guarded-job", period=timedelta(hours=1), service="api", severity=Severity.P1
)
SHORT = HeartbeatMonitor(
    name="short-job", period=timedelta(seconds=1), service="batch", severity=Severity.P3
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

Run = CliRun


@pytest.fixture(scope="session")
async def beats_env(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiEnv]:
    policy = with_heartbeats(default_policy, NIGHTLY, GUARDED, SHORT, *LOAD)
    async with running_api(dev_env, policy, tmp_path_factory.mktemp("beats-data"), "beats") as env:
        yield env


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
def firewatch(beats_env: ApiEnv, tmp_path: Path) -> Run:
    return cli_against(beats_env.stack, tmp_path)
