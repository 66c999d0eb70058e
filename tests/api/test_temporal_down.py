"""Temporal stopped mid-run: the API answers 503 + Retry-After, senders retry, and after
Temporal comes back (same port, same SQLite file) every accepted alert is an incident.

This test runs its own dev server as a subprocess, so it can stop and restart it.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.config import PolicyStore
from domain.ids import incident_workflow_id
from domain.incident import IncidentState
from domain.policy import Policy
from starter.api.context import ApiSettings
from starter.temporal_setup import dev_server_flags
from tests.api.api_support import ApiStack, eventually, free_port
from worker import ACTIVITY_THREADS, build_worker
from workflows.incident import IncidentWorkflow

TEMPORAL = Path(sys.executable).parent / "temporal"
ALERTS = 24


class DevServer:
    """`temporal server start-dev` on a fixed port with a persistent SQLite file."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [
            str(TEMPORAL),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--headless",
            "--log-level",
            "error",
            *dev_server_flags(),
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def ready(self) -> Client:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default")
                )
                return client
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    dev = DevServer(tmp_path / "temporal.db")
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture
async def api(server: DevServer, default_policy: Policy, tmp_path: Path) -> AsyncIterator[ApiStack]:
    # The API alone, started before Temporal: it must come up anyway.
    stack = ApiStack(
        target=server.address,
        namespace="default",
        policy=default_policy,
        data=tmp_path / "data",
        with_worker=False,
        settings=ApiSettings(
            task_queue=f"fw-down-{uuid.uuid4().hex[:8]}", temporal_retry_s=0.5, retry_after_s=1
        ),
    )
    await asyncio.to_thread(stack.start)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def send_until_accepted(
    http: httpx.AsyncClient, token: str, key: str, statuses: Counter[int]
) -> None:
    """What a well-behaved sender does: retry on 503/429 after Retry-After."""
    body = {"summary": f"alert {key}", "severity": "P2", "dedup_key": key}
    while True:
        response = await http.post(
            "/alerts", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        statuses[response.status_code] += 1
        if response.status_code == 202:
            return
        assert response.status_code in (429, 503), response.text
        assert int(response.headers["Retry-After"]) >= 1
        await asyncio.sleep(0.2)  # shorter than Retry-After, to keep the test quick


async def test_unavailable_then_recovered_and_nothing_lost(
    server: DevServer, api: ApiStack, default_policy: Policy
) -> None:
    token = api.key("generic")
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        # Temporal has never been up: 503 with Retry-After, and the process still answers.
        refused = await http.post(
            "/alerts",
            json={"summary": "too early", "dedup_key": "early"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert (await http.get("/health")).status_code == 200
        detailed = await http.get("/health/detailed")
        assert detailed.status_code == 503 and not detailed.json()["temporal"]["reachable"]

        server.start()
        client = await server.ready()
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as pool:
            worker = build_worker(
                client,
                policy=PolicyStore(policy=default_policy),
                data=api.data,
                task_queue=api.task_queue,
                executor=pool,
            )
            async with worker:
                statuses: Counter[int] = Counter()
                keys = [f"down-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(ALERTS)]

                async def sender() -> None:
                    for key in keys:
                        await send_until_accepted(http, token, key, statuses)
                        await asyncio.sleep(0.05)

                sending = asyncio.create_task(sender())
                await eventually(lambda: _at_least(statuses, 202, ALERTS // 3))
                await asyncio.to_thread(server.stop)  # Temporal goes away mid-run
                await eventually(lambda: _at_least(statuses, 503, 3))
                server.start()  # same port, same database file
                await server.ready()
                await asyncio.wait_for(sending, timeout=60)
                assert statuses[202] == ALERTS and statuses[503] >= 3, statuses

                # Every accepted alert is an incident, opened once, despite the outage.
                async def opened(key: str) -> IncidentState | None:
                    handle = client.get_workflow_handle(incident_workflow_id(key, "generic"))
                    state = await handle.query(IncidentWorkflow.state)
                    return state if state is not None and state.incident_id else None

                for key in keys:
                    state = await eventually(functools.partial(opened, key), timeout=60)
                    assert state.alert_count == 1 and state.dedup_key == key
                count = await client.count_workflows("WorkflowType = 'IncidentWorkflow'")
                assert count.count == ALERTS
                assert (await http.get("/health/detailed")).status_code == 200


async def _at_least(statuses: Counter[int], status: int, count: int) -> bool:
    return statuses[status] >= count
