"""Shared fixtures: real Temporal servers (time-skipping and dev), a real PostgreSQL,
policies, stores."""

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
from starter.temporal_setup import ONE_PARTITION_FLAGS
from storage.database import sqlite_url
from tests.postgres import PostgresMissing, PostgresServer
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
        dev_server_extra_args=ONE_PARTITION_FLAGS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


# Firewatch's own database on both back ends. The cluster starts once per session, on
# the first test that asks for it (about 1 s); each test then gets a new database.
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().start()
    except PostgresMissing as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty (unmigrated) PostgreSQL database: its SQLAlchemy URL."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each back end: the data dir's SQLite file, or PostgreSQL.
    Opening it (``Store(url)``, ``Database.open``) migrates it, as at start-up."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``database_url`` for tests of what the storage classes do rather than of migrating:
    the PostgreSQL one is a copy of a database migrated once per session (about 0.4 s less
    per test); SQLite is migrated when opened, as before. Opening either is at head."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(migrated=True)


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
