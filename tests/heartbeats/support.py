"""Helpers of the heartbeat tests: monitors, a policy with them, polling with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain.heartbeats import HeartbeatState, heartbeat_workflow_id
from domain.incident import IncidentState
from domain.policy import HeartbeatMonitor, Policy, Severity
from workflows.heartbeat import HeartbeatWorkflow
from workflows.incident import IncidentWorkflow

T = TypeVar("T")
_NOT_YET = (RPCStatusCode.NOT_FOUND, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
_QUERY_TIMEOUT = timedelta(seconds=3)

NIGHTLY = HeartbeatMonitor(
    name="nightly-backup",
    period=timedelta(hours=24),
    grace=timedelta(hours=2),
    service="api",
    severity=Severity.P3,
)
QUEUE_DRAIN = HeartbeatMonitor(
    name="queue-drain", period=timedelta(minutes=5), grace=timedelta(minutes=1), service="batch"
)


def with_heartbeats(policy: Policy, *monitors: HeartbeatMonitor) -> Policy:
    return policy.model_copy(update={"heartbeats": (*policy.heartbeats, *monitors)})


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20, what: str = "condition"
) -> T:
    """Poll (real time) until ``probe`` returns something truthy; not-found counts as not yet."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except RPCError as err:
            # Not started yet; or a query that met a continue-as-new (the time-skipping
            # server leaves those unanswered): ask again.
            if err.status not in _NOT_YET:
                raise
            last = err
        if last and not isinstance(last, BaseException):
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s (last: {last!r})")
        await asyncio.sleep(0.05)


def beat_handle(client: Client, name: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(heartbeat_workflow_id(name))


async def beat_state(client: Client, name: str) -> HeartbeatState:
    state: HeartbeatState = await beat_handle(client, name).query(
        HeartbeatWorkflow.state, rpc_timeout=_QUERY_TIMEOUT
    )
    return state


async def beat_when(
    client: Client, name: str, check: Callable[[HeartbeatState], bool], timeout: float = 20
) -> HeartbeatState:
    async def probe() -> HeartbeatState | None:
        state = await beat_state(client, name)
        return state if check(state) else None

    return await eventually(probe, timeout=timeout, what=f"heartbeat {name} state")


async def incident_when(
    client: Client, workflow_id: str, check: Callable[[IncidentState], bool], timeout: float = 20
) -> IncidentState:
    async def probe() -> IncidentState | None:
        state: IncidentState | None = await client.get_workflow_handle(workflow_id).query(
            IncidentWorkflow.state, rpc_timeout=_QUERY_TIMEOUT
        )
        return state if state is not None and check(state) else None

    return await eventually(probe, timeout=timeout, what=f"incident {workflow_id} state")


async def exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
