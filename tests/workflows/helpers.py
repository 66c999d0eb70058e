"""Helpers for driving IncidentWorkflow in tests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from domain.incident import Alert, IncidentState
from domain.policy import Severity
from starter.incidents import open_or_join
from workflows.incident import IncidentWorkflow


def make_alert(
    severity: str = "P1", service: str = "api", summary: str = "API p99 > 5s", **kw: Any
) -> Alert:
    return Alert(
        source=kw.pop("source", "cli"),
        dedup_key=kw.pop("dedup_key", f"test-{uuid.uuid4().hex[:12]}"),
        summary=summary,
        service=service,
        severity=Severity(severity),
        **kw,
    )


async def open_incident(
    client: Client, queue: str, severity: str = "P1", **kw: Any
) -> WorkflowHandle[Any, Any]:
    handle = await open_or_join(client, make_alert(severity, **kw), task_queue=queue)
    await handle.execute_update(IncidentWorkflow.opened)
    return handle


async def state_of(handle: WorkflowHandle[Any, Any]) -> IncidentState:
    state = await handle.query(IncidentWorkflow.state)
    assert state is not None
    return state


def page_offsets(state: IncidentState) -> list[tuple[timedelta, str, str]]:
    """(offset from opening, role, person) for every ladder page, in order."""
    return [(p.at - state.opened_at, p.role.value, p.person) for p in state.pages]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


async def wait_until(
    handle: WorkflowHandle[Any, Any], predicate: Any, timeout: float = 10.0
) -> IncidentState:
    """Poll the state query until ``predicate(state)`` holds (real time, bounded)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        state = await handle.query(IncidentWorkflow.state)
        if state is not None and predicate(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout}s; state: {state.model_dump_json()[:2000]}"
            )
        await asyncio.sleep(0.05)


async def first_paged(handle: WorkflowHandle[Any, Any]) -> str:
    return (await wait_until(handle, lambda s: bool(s.pages))).pages[0].person
