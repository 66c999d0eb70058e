"""Joining, auto-resolve, re-opening after resolution, and continue-as-new keeping all state."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.ids import incident_workflow_id
from domain.incident import AcknowledgeRequest, AlertResolveRequest, Status, StatusUpdateRequest
from domain.policy import Policy
from starter.incidents import OpenIncidents, attach, open_or_join
from tests.conftest import BIN, SEARCH_ATTRIBUTES, running_worker
from tests.workflows.helpers import first_paged, make_alert, open_incident, wait_until
from workflows.incident import IncidentWorkflow


async def test_alerts_with_the_same_key_join_and_the_source_can_resolve(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    alert = make_alert("P2", source="alertmanager", integration="alertmanager")
    first = await open_or_join(ts_env.client, alert, task_queue=queue)
    for _ in range(3):
        again = await open_or_join(ts_env.client, alert, task_queue=queue)
        assert again.id == first.id
    st = await wait_until(first, lambda s: s.alert_count == 4 and bool(s.pages))
    assert len(st.pages) == 1
    await first.signal(
        IncidentWorkflow.resolve_from_source,
        AlertResolveRequest(
            source="alertmanager", dedup_key=alert.dedup_key, integration="alertmanager"
        ),
    )
    final = await first.result()
    assert final.status == Status.RESOLVED and final.resolved_by == "alertmanager"
    outbox = Store(tmp_path).notifications(final.incident_id)
    assert [n.kind for n in outbox].count("initial_alert") == 1
    assert [n.kind for n in outbox].count("page") == 1


async def test_a_new_alert_after_resolution_opens_a_new_incident(
    ts_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    queue: str,
) -> None:
    from domain.incident import ResolveRequest

    alert = make_alert("P3")
    handle = await open_or_join(ts_env.client, alert, task_queue=queue)
    st = await handle.execute_update(IncidentWorkflow.opened)
    await handle.execute_update(
        IncidentWorkflow.resolve, ResolveRequest(by="bob", root_cause="x", fix="y")
    )
    await handle.result()
    reopened = await open_or_join(ts_env.client, alert, task_queue=queue)
    st2 = await reopened.execute_update(IncidentWorkflow.opened)
    assert reopened.id == handle.id
    assert st2.incident_id != st.incident_id and st2.status == Status.TRIGGERED


async def test_continue_as_new_keeps_every_bit_of_state(
    default_policy: Policy, tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    # A dev server that suggests continue-as-new after a small history, so it really happens.
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=150",
        ],
    )
    try:
        async with running_worker(env.client, default_policy, tmp_path, executor) as (_, queue):
            alert = make_alert("P1")
            handle = await open_incident(env.client, queue, "P1", dedup_key=alert.dedup_key)
            first_run = (await handle.describe()).run_id
            paged = await first_paged(handle)
            await handle.execute_update(IncidentWorkflow.acknowledge, AcknowledgeRequest(by=paged))
            for batch in range(4):
                await asyncio.gather(
                    *(open_or_join(env.client, alert, task_queue=queue) for _ in range(40))
                )
                update = StatusUpdateRequest(by=paged, message=f"update {batch}")
                await env.client.get_workflow_handle(handle.id).execute_update(
                    IncidentWorkflow.post_update, update
                )
            latest = env.client.get_workflow_handle(handle.id)
            st = await wait_until(latest, lambda s: s.alert_count == 161)
            last_run = (await latest.describe()).run_id
    finally:
        await env.shutdown()

    assert last_run != first_run, "expected at least one continue-as-new"
    assert st.acknowledged_by == paged and st.status == Status.INVESTIGATING
    assert [e.text for e in st.timeline if e.kind == "update"] == [f"update {i}" for i in range(4)]
    assert len(st.pages) == 1
    outbox = Store(tmp_path).notifications(st.incident_id)
    assert [n.kind for n in outbox].count("initial_alert") == 1
    assert [n.kind for n in outbox].count("page") == 1


class _CallLog(Interceptor):
    """Records which client calls reach Temporal (a real client interceptor, not a mock)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        log = self.calls

        class Recording(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                log.append("signal-with-start")
                return await super().start_workflow(input)

            async def signal_workflow(self, input: SignalWorkflowInput) -> None:
                log.append("signal")
                await super().signal_workflow(input)

        return Recording(next)


async def test_attach_signals_an_incident_it_saw_open_and_reopens_one_that_closed(
    dev_env: WorkflowEnvironment,
    default_policy: Policy,
    tmp_path: Path,
    executor: ThreadPoolExecutor,
) -> None:
    from domain.incident import ResolveRequest

    calls = _CallLog()
    # The dev server, not the time-skipping one: only it says whether signal-with-start started.
    client = Client(**{**dev_env.client.config(), "interceptors": [calls]})
    seen = OpenIncidents()
    alert = make_alert("P3")
    async with running_worker(client, default_policy, tmp_path, executor) as (_, queue):
        assert await attach(client, alert, seen, task_queue=queue) is True
        assert await attach(client, alert, seen, task_queue=queue) is False
        workflow_id = incident_workflow_id(alert.dedup_key, alert.integration)
        handle = client.get_workflow_handle(workflow_id)
        st = await wait_until(handle, lambda s: s.alert_count == 2 and s.incident_id is not None)
        assert calls.calls == ["signal-with-start", "signal"]

        await handle.execute_update(
            IncidentWorkflow.resolve, ResolveRequest(by="bob", root_cause="x", fix="y")
        )
        await handle.result()
        # The hint is stale now: the signal finds no open incident; the alert opens a new one.
        assert await attach(client, alert, seen, task_queue=queue) is True
        assert calls.calls[2:] == ["signal", "signal-with-start"]
        latest = client.get_workflow_handle(workflow_id)
        reopened = await latest.execute_update(IncidentWorkflow.opened)
    assert reopened.incident_id != st.incident_id and reopened.alert_count == 1
    assert workflow_id in seen


def test_open_incidents_forgets_the_least_recently_seen() -> None:
    seen = OpenIncidents(capacity=2)
    for workflow_id in ("a", "b", "a", "c"):
        seen.add(workflow_id)
    assert "a" in seen and "c" in seen and "b" not in seen and len(seen) == 2
    seen.discard("a")
    seen.discard("never-seen")
    assert "a" not in seen and len(seen) == 1
