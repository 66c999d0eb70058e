"""A real Firewatch worker with the default policy on the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from tests.conftest import running_worker


@pytest.fixture
async def queue(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> AsyncIterator[str]:
    """The task queue of a worker whose data (outbox, tickets) lives in ``tmp_path``."""
    async with running_worker(ts_env.client, default_policy, tmp_path, executor) as (_, name):
        yield name
