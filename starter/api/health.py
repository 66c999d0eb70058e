"""GET /health (liveness) and GET /health/detailed (Temporal, worker, open incidents).

The runbook curls both with ``curl -f``, so the detailed form answers 503 when Temporal
is unreachable or no worker polls the task queue.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from domain.incident import OPEN_STATUSES
from domain.policy import Severity
from starter.api.context import get_ctx
from starter.temporal_setup import workflow_pollers

CHECK_TIMEOUT_S = 3.0
# Workers long-poll for about a minute, so a live worker's last poll can be that old.
POLLER_FRESH_FOR = timedelta(seconds=90)

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class TemporalHealth(BaseModel):
    reachable: bool
    address: str
    namespace: str
    latency_ms: float | None = None
    error: str | None = None


class WorkerHealth(BaseModel):
    polling: bool
    task_queue: str
    pollers: int = 0
    error: str | None = None


class IncidentCounts(BaseModel):
    open_total: int | None = None
    open_by_severity: dict[Severity, int] = Field(default_factory=dict)
    error: str | None = None


class DetailedHealth(BaseModel):
    status: Literal["ok", "degraded"]
    checked_at: datetime
    temporal: TemporalHealth
    worker: WorkerHealth
    incidents: IncidentCounts


@router.get("/health", response_model=Health, summary="Liveness: the API process answers")
async def health() -> Health:
    return Health()


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]


async def _temporal(client: Client, address: str) -> TemporalHealth:
    started = time.perf_counter()
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace),
            timeout=timedelta(seconds=CHECK_TIMEOUT_S),
        )
    except Exception as err:
        return TemporalHealth(
            reachable=False, address=address, namespace=client.namespace, error=_short(err)
        )
    latency = round((time.perf_counter() - started) * 1000, 1)
    return TemporalHealth(
        reachable=True, address=address, namespace=client.namespace, latency_ms=latency
    )


async def _worker(client: Client, task_queue: str) -> WorkerHealth:
    try:
        pollers = await asyncio.wait_for(workflow_pollers(client, task_queue), CHECK_TIMEOUT_S)
    except Exception as err:
        return WorkerHealth(polling=False, task_queue=task_queue, error=_short(err))
    cutoff = datetime.now(UTC) - POLLER_FRESH_FOR
    fresh = [p for p in pollers if p.last_access_time.ToDatetime(tzinfo=UTC) >= cutoff]
    return WorkerHealth(polling=bool(fresh), task_queue=task_queue, pollers=len(fresh))


async def _open_counts(client: Client) -> IncidentCounts:
    statuses = ", ".join(f"'{s.value}'" for s in OPEN_STATUSES)
    base = f"WorkflowType = 'IncidentWorkflow' AND IncidentStatus IN ({statuses})"

    async def count(severity: Severity) -> int:
        result = await client.count_workflows(f"{base} AND IncidentSeverity = '{severity.value}'")
        return result.count

    try:
        counts = await asyncio.wait_for(
            asyncio.gather(*(count(s) for s in Severity)), CHECK_TIMEOUT_S
        )
    except Exception as err:
        return IncidentCounts(error=_short(err))
    by_severity = dict(zip(Severity, counts, strict=True))
    return IncidentCounts(open_total=sum(counts), open_by_severity=by_severity)


@router.get(
    "/health/detailed",
    response_model=DetailedHealth,
    responses={503: {"model": DetailedHealth, "description": "Temporal unreachable or no worker"}},
    summary="Temporal reachability, worker polling, open incidents by severity",
)
async def detailed(request: Request) -> JSONResponse:
    ctx = get_ctx(request)
    client = await ctx.client()
    temporal = await _temporal(client, ctx.gate.target)
    if temporal.reachable:
        worker, incidents = await asyncio.gather(
            _worker(client, ctx.settings.task_queue), _open_counts(client)
        )
    else:
        worker = WorkerHealth(
            polling=False, task_queue=ctx.settings.task_queue, error="Temporal unreachable"
        )
        incidents = IncidentCounts(error="Temporal unreachable")
    healthy = temporal.reachable and worker.polling
    report = DetailedHealth(
        status="ok" if healthy else "degraded",
        checked_at=datetime.now(UTC),
        temporal=temporal,
        worker=worker,
        incidents=incidents,
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if healthy else 503)
