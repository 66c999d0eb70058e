"""Heartbeat monitors (dead-man's switches): ``POST /heartbeats/{name}`` and ``GET /heartbeats``.

A job pings its monitor with the monitor's own token (``Authorization: Bearer …``; the
tokens live in Firewatch's database, ``firewatch heartbeats --show-urls`` prints
them). A ping signals the monitor's workflow (``heartbeat/<name>``) with signal-with-start,
so the first ping creates it, and answers 202 once Temporal recorded it. A missing token
is 401, a wrong one 403, an unknown monitor 404; none of them reaches Temporal. The token
is compared in constant time and never leaves this process (not in the signal, not logged).

``GET /heartbeats`` (the API token) lists every monitor with its state, from each
monitor's workflow (a query; no workflow: never pinged yet).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.durations import format_duration
from domain.heartbeats import (
    HeartbeatState,
    HeartbeatStatus,
    allowance,
    due_by,
    heartbeat_incident_workflow_id,
    heartbeat_workflow_id,
    status,
)
from domain.policy import HeartbeatMonitor, Severity
from starter.api.auth import forbidden, require_api_token, same_secret, unauthorized
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import AUTH_RESPONSES, COMMON_RESPONSES, ApiError, ErrorBody
from starter.secrets import mask
from storage.store import Store
from workflows.heartbeat import HeartbeatInput, HeartbeatPing, HeartbeatWorkflow

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"  # domain.policy.HeartbeatMonitor.name
_NOBODY = "heartbeat-token-of-no-monitor"  # compared against for unknown names, as for known

_heartbeat_bearer = HTTPBearer(
    scheme_name="HeartbeatToken",
    auto_error=False,
    description="The monitor's token (`firewatch heartbeats --show-urls`)",
)

router = APIRouter(tags=["heartbeats"])


# ---- the Temporal side ----------------------------------------------------------------------


async def ping_heartbeat(
    client: Client, monitor: HeartbeatMonitor, *, task_queue: str
) -> WorkflowHandle[Any, Any]:
    """Signal-with-start: the ping is durably recorded when this returns."""
    return await client.start_workflow(
        HeartbeatWorkflow.run,
        HeartbeatInput(monitor=monitor),
        id=heartbeat_workflow_id(monitor.name),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A monitor removed from the policy ends its workflow; added back, it starts anew.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal="ping",
        start_signal_args=[HeartbeatPing(monitor=monitor)],
        static_summary=f"Heartbeat {monitor.name} · {monitor.service}"[:400],
    )


async def heartbeat_state(
    client: Client, name: str, *, timeout: float
) -> HeartbeatState | Literal["unknown"] | None:
    """The monitor's state; None before its first ping; "unknown": no worker answered."""
    handle = client.get_workflow_handle(heartbeat_workflow_id(name))
    try:
        state: HeartbeatState = await asyncio.wait_for(
            handle.query(HeartbeatWorkflow.state), timeout=timeout
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            return "unknown"
        raise
    except TimeoutError:
        return "unknown"
    return None if state.removed else state


async def open_incident_id(client: Client, store: Store, name: str) -> str | None:
    """The INC id of the incident the monitor's miss opened: its running workflow's run,
    through the durable run→incident mapping (not visibility, which lags)."""
    workflow_id = heartbeat_incident_workflow_id(name)
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    return await asyncio.to_thread(store.incident_for_run, workflow_id, described.run_id)


# ---- POST /heartbeats/{name} ----------------------------------------------------------------


class PingAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    heartbeat: str
    due_by: datetime = Field(description="No ping by then opens an incident (period + grace)")


_PING_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"model": ErrorBody, "description": "No heartbeat monitor of that name in the policy"},
    **COMMON_RESPONSES,
}


@router.post(
    "/heartbeats/{name}",
    status_code=202,
    response_model=PingAccepted,
    responses=_PING_RESPONSES,
    summary="Ping a heartbeat monitor (its own token as Bearer)",
)
async def ping(
    request: Request,
    name: str = Path(max_length=64, pattern=NAME_PATTERN),
    credentials: HTTPAuthorizationCredentials | None = Depends(_heartbeat_bearer),
) -> PingAccepted:
    ctx = get_ctx(request)
    if credentials is None or not credentials.credentials:
        raise unauthorized("heartbeat token (Authorization: Bearer …)")
    monitor = ctx.policy().heartbeat(name)
    expected = ctx.secrets().for_heartbeat(name) if monitor is not None else None
    if monitor is None or expected is None:
        same_secret(credentials.credentials, _NOBODY)  # the same work either way
        raise ApiError(404, f"no heartbeat monitor {name!r}")
    if not same_secret(credentials.credentials, expected):
        raise forbidden("heartbeat token")
    client = await ctx.client()
    await ping_heartbeat(client, monitor, task_queue=ctx.settings.task_queue)
    return PingAccepted(heartbeat=name, due_by=datetime.now(UTC) + allowance(monitor))


# ---- GET /heartbeats ------------------------------------------------------------------------


class HeartbeatInfo(BaseModel):
    name: str
    service: str
    severity: Severity
    period: str
    grace: str
    status: HeartbeatStatus | Literal["unknown"] = Field(
        description="waiting: never pinged; up; late: past the period, within the grace;"
        " missed: an incident is open until the next ping; unknown: no worker answered"
    )
    last_ping_at: datetime | None = None
    due_by: datetime | None = None
    missed_at: datetime | None = None
    pings: int = 0
    misses: int = 0
    incident_workflow_id: str | None = Field(
        default=None, description="The workflow of the incident a miss opens (while missed)"
    )
    incident_id: str | None = Field(
        default=None, description="That incident's id (INC-…), once it has one"
    )
    url: str = Field(description="Where the job pings (POST)")
    token: str | None = Field(description="Masked unless show_urls; null if not generated yet")
    masked: bool


class HeartbeatList(BaseModel):
    heartbeats: list[HeartbeatInfo]
    secrets: Literal["masked", "shown"]


def _info(
    monitor: HeartbeatMonitor,
    state: HeartbeatState | Literal["unknown"] | None,
    token: str | None,
    base: str,
    show: bool,
    now: datetime,
    incident_id: str | None,
) -> HeartbeatInfo:
    known = state if isinstance(state, HeartbeatState) else None
    missed = known is not None and known.missed_at is not None
    return HeartbeatInfo(
        name=monitor.name,
        service=monitor.service,
        severity=monitor.severity,
        period=format_duration(monitor.period),
        grace=format_duration(monitor.grace),
        status="unknown" if state == "unknown" else status(known, now),
        last_ping_at=known.last_ping_at if known else None,
        due_by=due_by(known) if known and not missed else None,
        missed_at=known.missed_at if known else None,
        pings=known.pings if known else 0,
        misses=known.misses if known else 0,
        incident_workflow_id=heartbeat_incident_workflow_id(monitor.name) if missed else None,
        incident_id=incident_id if missed else None,
        url=f"{base}/heartbeats/{monitor.name}",
        token=(token if show else mask(token)) if token is not None else None,
        masked=not show,
    )


@router.get(
    "/heartbeats",
    response_model=HeartbeatList,
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
    summary="Heartbeat monitors and their state",
)
async def list_heartbeats(
    request: Request,
    show_urls: bool = Query(default=False, description="Show each monitor's token in full"),
) -> HeartbeatList:
    ctx: ApiContext = get_ctx(request)
    monitors = ctx.policy().heartbeats
    secrets = ctx.secrets()
    states: list[HeartbeatState | Literal["unknown"] | None] = []
    incident_ids: dict[str, str | None] = {}
    if monitors:
        client = await ctx.client()
        timeout = ctx.settings.worker_timeout_s
        states = list(
            await asyncio.gather(
                *(heartbeat_state(client, m.name, timeout=timeout) for m in monitors)
            )
        )
        missed = [
            m.name
            for m, s in zip(monitors, states, strict=True)
            if isinstance(s, HeartbeatState) and s.missed_at is not None
        ]
        found = await asyncio.gather(
            *(open_incident_id(client, ctx.store(), name) for name in missed)
        )
        incident_ids = dict(zip(missed, found, strict=True))
    base = str(request.base_url).rstrip("/")
    now = datetime.now(UTC)
    rows = [
        _info(m, s, secrets.for_heartbeat(m.name), base, show_urls, now, incident_ids.get(m.name))
        for m, s in zip(monitors, states, strict=True)
    ]
    return HeartbeatList(heartbeats=rows, secrets="shown" if show_urls else "masked")
