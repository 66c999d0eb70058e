"""Joining, auto-resolve, re-opening after resolution, and continue-as-new keeping all state."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain.incident import AcknowledgeRequest, AlertResolveRequest, Status, StatusUpdateRequest
from domain.policy import Policy
from starter.incidents import open_or_join
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
