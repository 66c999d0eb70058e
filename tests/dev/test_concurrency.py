"""Concurrent alerts against the real dev server: one incident per dedup key, ids in order."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.ids import incident_workflow_id, parse_incident_id
from domain.incident import IncidentState
from domain.policy import Policy
from starter.incidents import trigger
from tests.conftest import running_worker
from tests.dev.support import by_kind_recipient, outbox, wait_for
from tests.workflows.helpers import make_alert, state_of


class _RunRecorder(Interceptor):
    """Records the run every start call (signal- or update-with-start) landed on."""

    def __init__(self) -> None:
        self.runs: list[str | None] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        recorder = self

        class _Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                handle = await super().start_workflow(input)
                recorder.runs.append(handle.result_run_id)
                return handle

            async def start_update_with_start_workflow(
                self, input: StartWorkflowUpdateWithStartInput
            ) -> WorkflowUpdateHandle[Any]:
                handle = await super().start_update_with_start_workflow(input)
                recorder.runs.append(handle.workflow_run_id)
                return handle

        return _Outbound(next)


def _recording_client(client: Client) -> tuple[Client, _RunRecorder]:
    recorder = _RunRecorder()
    spied = Client(
        client.service_client,
        namespace=client.namespace,
        data_converter=pydantic_data_converter,
        interceptors=[recorder],
    )
    return spied, recorder


async def test_fifty_alerts_one_dedup_key_open_one_incident(
    dev_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    client, recorder = _recording_client(dev_env.client)
    dedup_key = f"burst-{uuid.uuid4().hex[:12]}"
    workflow_id = incident_workflow_id(dedup_key)
    store = Store(tmp_path)
    async with running_worker(client, default_policy, tmp_path, executor) as (_, queue):
        alerts = [
            make_alert("P1", dedup_key=dedup_key, summary=f"API p99 > 5s #{i}") for i in range(50)
        ]
        states: list[IncidentState] = await asyncio.gather(
            *(trigger(client, alert, task_queue=queue) for alert in alerts)
        )
        handle = client.get_workflow_handle(workflow_id)
        try:
            assert {st.incident_id for st in states} == {states[0].incident_id}
            assert {st.workflow_id for st in states} == {workflow_id}
            incident = states[0].incident_id
            assert incident is not None
            assert len(recorder.runs) == 50
            assert len(set(recorder.runs)) == 1 and recorder.runs[0]
            run_id = recorder.runs[0]

            # Visibility: one IncidentWorkflow for this dedup key, and one run of its id.
            async def listed() -> list[Any]:
                query = f"WorkflowType = 'IncidentWorkflow' AND IncidentDedupKey = '{dedup_key}'"
                return [wf async for wf in client.list_workflows(query)]

            found = await wait_for(listed, timeout=10, what="the incident in visibility")
            assert [(wf.id, wf.run_id) for wf in found] == [(workflow_id, run_id)]
            runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
            assert [wf.run_id for wf in runs] == [run_id]

            # Every alert was attached to it; the first page went out once.
            async def settled() -> IncidentState | None:
                st = await state_of(handle)
                done = st.alert_count >= 50 and len(st.pages) == 1 and st.next_step_at is not None
                return st if done else None

            st = await wait_for(settled, timeout=20, what="50 alerts absorbed and level 1 paged")
            assert st.alert_count == 50
            assert st.incident_id == incident
            rows = outbox(store, incident)
            assert by_kind_recipient(rows) == Counter(
                {("initial_alert", "#incidents"): 1, ("page", st.pages[0].person): 1}
            )
            assert [p.level for p in st.pages] == [0]
            assert [e.kind for e in st.timeline].count("opened") == 1
        finally:
            await handle.terminate("test over")


def _number(incident_id: str | None, day: str) -> int:
    assert incident_id is not None
    parsed = parse_incident_id(incident_id)
    assert parsed is not None, incident_id
    assert parsed[0].isoformat() == day, f"{incident_id} is not numbered for {day}"
    return parsed[1]


async def test_incident_numbers_are_contiguous_and_survive_a_worker_restart(
    dev_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    client = dev_env.client
    data = tmp_path / "data"
    handles: list[WorkflowHandle[Any, Any]] = []

    async def open_one(queue: str) -> IncidentState:
        alert = make_alert("P2")
        handles.append(client.get_workflow_handle(incident_workflow_id(alert.dedup_key)))
        return await trigger(client, alert, task_queue=queue)

    try:
        async with running_worker(client, default_policy, data, executor) as (_, queue):
            states = await asyncio.gather(*(open_one(queue) for _ in range(30)))
        # Incident ids use the UTC date of the workflow's clock at opening.
        day = states[0].opened_at.astimezone(UTC).date().isoformat()
        assert day == datetime.now(UTC).date().isoformat()
        for st in states:
            assert st.opened_at.astimezone(UTC).date().isoformat() == day
            assert st.incident_id == f"INC-{day}-{_number(st.incident_id, day):03d}"
        numbers = sorted(_number(st.incident_id, day) for st in states)
        assert numbers == list(range(1, 31))  # unique, contiguous, from 001 in a fresh data dir

        # A restarted worker (a new Store on the same data dir) continues the sequence.
        async with running_worker(client, default_policy, data, executor) as (_, queue):
            after_restart = await open_one(queue)
        assert after_restart.incident_id == f"INC-{day}-031"

        # Another data dir has its own sequence.
        async with running_worker(client, default_policy, tmp_path / "fresh", executor) as (
            _,
            queue,
        ):
            fresh = await open_one(queue)
        assert fresh.incident_id == f"INC-{day}-001"
    finally:
        await asyncio.gather(*(h.terminate("test over") for h in handles), return_exceptions=True)
