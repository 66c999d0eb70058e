"""Shared fixtures: real Temporal servers (time-skipping and dev), policies, stores."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# Every workflow the suite runs goes through Temporal's sandbox (production skips it for
# speed, see worker.workflow_runner); subprocess workers inherit the setting.
os.environ.setdefault("FIREWATCH_WORKFLOW_SANDBOX", "1")

from activities.config import PolicyStore
from domain.policy import Policy
from domain.policy_file import parse_policy
from tests.runbooks.servers import DeployTool, HealthServer
from worker import ACTIVITY_THREADS, build_worker
from workflows import search_attributes as sa

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_POLICY_PATH = ROOT / "domain" / "default_policy.yaml"
SEARCH_ATTRIBUTES = [
    sa.INCIDENT_ID,
    sa.INCIDENT_SEVERITY,
    sa.INCIDENT_STATUS,
    sa.INCIDENT_SERVICE,
    sa.INCIDENT_ASSIGNEE,
    sa.INCIDENT_DEDUP_KEY,
    sa.INCIDENT_SOURCE,
    sa.INCIDENT_OPENED_AT,
    sa.INCIDENT_RESOLVED_AT,
    sa.INCIDENT_FALSE_POSITIVE,
]


def load_default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY_PATH.read_text(), str(DEFAULT_POLICY_PATH))


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    return load_default_policy()


@asynccontextmanager
async def ts_environment() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    # The time-skipping server knows no custom search attributes until told.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    # One server per test: a workflow left behind by an earlier test (its worker gone)
    # would hold the clock still and stop time skipping.
    async with ts_environment() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=ACTIVITY_THREADS)
    yield pool
    pool.shutdown(wait=False)


@asynccontextmanager
async def running_worker(
    client: Client, policy: Policy, data: Path, executor: ThreadPoolExecutor
) -> AsyncIterator[tuple[Worker, str]]:
    """A real Firewatch worker on a fresh task queue."""
    queue = f"fw-test-{uuid.uuid4().hex[:8]}"
    worker = build_worker(
        client, policy=PolicyStore(policy=policy), data=data, task_queue=queue, executor=executor
    )
    async with worker:
        yield worker, queue


# Loopback stand-ins for a team's own systems (runbook checks and mitigations), shared by a
# module's tests: a health endpoint and a deploy tool that executes each Idempotency-Key once.
@pytest.fixture(scope="module")
def loopback_health() -> Iterator[HealthServer]:
    with HealthServer() as server:
        assert isinstance(server, HealthServer)
        yield server


@pytest.fixture(scope="module")
def loopback_deploy_tool() -> Iterator[DeployTool]:
    with DeployTool() as server:
        assert isinstance(server, DeployTool)
        yield server
