"""Lookups by INC id go through the id store, not visibility (real Temporal, real store).

On the test dev server visibility is fast enough that an immediate lookup through it
usually works too, so this pins the difference down: a run that visibility does not know
by its INC id (no worker has upserted the attribute) is found through the mapping alone.

The second test follows one workflow id through continue-as-new with a stand-in for the
incident workflow that only does what matters here (ids and search attributes), because
the real one continues as new only after thousands of events or in a narrow race.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.incident_ids import IncidentIdActivities
from activities.models import OpenIncident
from activities.store import Store
from domain.incident import Alert
from domain.policy import Severity
from starter import incidents as fw
from tests.api.api_support import ApiEnv, eventually, unique
from workflows import search_attributes as sa

# A day no other test numbers incidents on, so visibility cannot hold these ids.
DAY = date(1999, 12, 31)


def _opening(workflow_id: str, run_id: str, summary: str) -> OpenIncident:
    return OpenIncident(
        workflow_id=workflow_id,
        run_id=run_id,
        day=DAY,
        at=datetime.now(UTC),
        with_policy=False,
        summary=summary,
        service="api",
        severity="P2",
    )


async def test_the_mapping_finds_a_run_visibility_does_not_know(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    client = api_env.client
    alert = Alert(
        source="api",
        dedup_key=unique("unlisted"),
        summary="nobody polls this queue",
        service="api",
        severity=Severity.P2,
        received_at=datetime.now(UTC),
    )
    # Started, but on a queue no worker polls: it never upserts its IncidentId.
    started = await fw.open_or_join(client, alert, task_queue=unique("nobody-polls"))
    try:
        run_id = (await started.describe()).run_id
        store = Store(tmp_path)
        # The same call the opening activity makes.
        inc = IncidentIdActivities(store).allocate_for(_opening(started.id, run_id, alert.summary))

        found = await fw.handle_for(client, inc, store=store)
        assert (found.id, found.run_id) == (started.id, run_id)
        with pytest.raises(fw.IncidentNotFound, match=f"no incident {inc}"):
            await fw.handle_for(client, inc)  # visibility alone: not found

        # A row whose workflow does not exist (gone with retention) is not found either.
        gone = IncidentIdActivities(store).allocate_for(
            _opening("incident/direct/never-started", "0000", "gone")
        )
        with pytest.raises(fw.IncidentNotFound, match=f"no incident {gone}"):
            await fw.handle_for(client, gone, store=store)
        with pytest.raises(fw.IncidentNotFound, match="is not an incident id"):
            await fw.handle_for(client, "INC-1999-12-31", store=store)
    finally:
        await started.terminate("test over")


@workflow.defn(name="IncidentWorkflow")  # the type lookups filter on
class ChainedIncident:
    """Opens with an id (now, or on ``open`` like a run allocating one), resolves, and
    continues as new: with the same id (history hygiene) or with none (the next incident
    on this workflow id, not opened yet)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._resolved = False
        self._next: tuple[str | None] | None = None

    @workflow.run
    async def run(self, incident_id: str | None) -> None:
        self._id = incident_id or self._id  # ``open`` may have come with the first task
        await workflow.wait_condition(lambda: self._id is not None)
        assert self._id is not None
        workflow.upsert_search_attributes(
            [sa.INCIDENT_ID.value_set(self._id), sa.INCIDENT_STATUS.value_set("Triggered")]
        )
        await workflow.wait_condition(lambda: self._resolved or self._next is not None)
        if self._resolved:
            workflow.upsert_search_attributes(
                [
                    sa.INCIDENT_STATUS.value_set("Resolved"),
                    sa.INCIDENT_RESOLVED_AT.value_set(workflow.now()),
                ]
            )
        await workflow.wait_condition(lambda: self._next is not None)
        assert self._next is not None
        workflow.continue_as_new(self._next[0])

    @workflow.signal
    def open(self, incident_id: str) -> None:
        self._id = incident_id

    @workflow.signal
    def resolve(self) -> None:
        self._resolved = True

    @workflow.signal
    def carry_on(self, incident_id: str | None) -> None:
        self._next = (incident_id,)


async def _attrs(handle: WorkflowHandle[Any, Any]) -> tuple[str, Any, Any]:
    latest = await handle.describe()
    attrs = latest.typed_search_attributes
    return latest.run_id, attrs.get(sa.INCIDENT_ID), attrs.get(sa.INCIDENT_STATUS)


async def _until(probe: Callable[[], Awaitable[bool]]) -> None:
    await eventually(probe, timeout=10, every=0.05)


async def test_runs_through_continue_as_new(api_env: ApiEnv, tmp_path: Path) -> None:
    client: Client = api_env.client
    store = Store(tmp_path)
    ids = IncidentIdActivities(store)
    queue = unique("chained")
    workflow_id = f"incident/direct/chained-{uuid.uuid4().hex[:8]}"

    async def run_of(incident_id: str) -> str | None:
        return (await fw.handle_for(client, incident_id, store=store)).run_id

    async with Worker(
        client,
        task_queue=queue,
        workflows=[ChainedIncident],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            ChainedIncident.run, None, id=workflow_id, task_queue=queue
        )
        r1 = (await handle.describe()).run_id
        inc_a = ids.allocate_for(_opening(workflow_id, r1, "first"))
        await handle.signal(ChainedIncident.open, inc_a)
        await _until(lambda: _is(handle, (r1, inc_a, "Triggered")))
        assert await run_of(inc_a) == r1

        # History hygiene: the incident goes on in a second run, which allocates nothing.
        await handle.signal(ChainedIncident.carry_on, inc_a)
        await _until(lambda: _moved_on(handle, {r1}))
        r2 = (await handle.describe()).run_id
        await _until(lambda: _is(handle, (r2, inc_a, "Triggered")))
        assert await run_of(inc_a) == r2
        await handle.signal(ChainedIncident.resolve)
        await _until(lambda: _is(handle, (r2, inc_a, "Resolved")))
        assert await run_of(inc_a) == r2  # resolved in this very run: still the incident

        # The next alert: a third run, not opened yet, starts with the old run's
        # attributes (INC id included) but is not that incident.
        await handle.signal(ChainedIncident.carry_on, None)
        await _until(lambda: _moved_on(handle, {r1, r2}))
        r3, carried_id, carried_status = await _attrs(handle)
        assert (carried_id, carried_status) == (inc_a, "Resolved")
        assert await run_of(inc_a) != r3
        await _until(lambda: _equal(run_of(inc_a), r2))  # its last run, once visible closed

        inc_b = ids.allocate_for(_opening(workflow_id, r3, "second"))
        await handle.signal(ChainedIncident.open, inc_b)
        await _until(lambda: _is(handle, (r3, inc_b, "Triggered")))
        assert await run_of(inc_b) == r3
        assert await run_of(inc_a) == r2
        await handle.terminate("test over")


async def _is(handle: WorkflowHandle[Any, Any], wanted: tuple[str, str, str]) -> bool:
    return await _attrs(handle) == wanted


async def _moved_on(handle: WorkflowHandle[Any, Any], runs: set[str]) -> bool:
    return (await handle.describe()).run_id not in runs


async def _equal(value: Awaitable[Any], wanted: Any) -> bool:
    return bool(await value == wanted)
