"""Maintenance windows: ``POST /maintenance``, ``GET /maintenance``, ``POST /maintenance/{id}/end``.

While a window is on, alerts for its service are accepted and recorded but page nobody
(``active_window``, asked by every ingest through ``ingest_common.open_alert``). Each window
has a small workflow (``workflows.maintenance``) that announces its start and end in
#incidents and releases the incidents it held. Behind the API token, like /incidents. A
refused request (unknown service, end before start, no reason, someone not on the roster)
stores nothing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.maintenance import (
    REASON_CHARS,
    SERVICE_CHARS,
    MaintenanceRefused,
    MaintenanceWindow,
    WindowPhase,
    check_actor,
    check_end,
    maintenance_workflow_id,
    validate_window,
)
from starter.api.auth import require_api_token
from starter.api.bodies import Body
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    ApiError,
    ErrorBody,
    FieldError,
)
from starter.api.incidents import PRINTABLE
from starter.api.ingest_common import Timestamp
from starter.secrets import added_integrations
from storage.maintenance import MaintenanceWindows
from workflows.maintenance import EndMaintenance, MaintenanceWindowWorkflow

router = APIRouter(
    tags=["maintenance"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)

# How long an ingest trusts its last look at a service's windows (this process forgets at
# once when it adds or ends one; another API process sees it within this long).
CACHE_SECONDS = 2.0
_CACHE_SERVICES = 10_000


class NewMaintenance(Body):
    service: str = Field(min_length=1, max_length=SERVICE_CHARS, pattern=PRINTABLE)
    starts_at: Timestamp | None = Field(
        default=None, description="ISO 8601 with offset; default: now"
    )
    ends_at: Timestamp = Field(description="ISO 8601 with offset; after starts_at")
    reason: str = Field(max_length=REASON_CHARS, examples=["DB upgrade"])
    by: str = Field(min_length=1, max_length=200, description="Who (a roster name)")


class EndRequest(Body):
    by: str = Field(min_length=1, max_length=200, description="Who (a roster name)")


class MaintenanceView(MaintenanceWindow):
    phase: WindowPhase = Field(description="scheduled, active or ended, at the time of asking")


def _view(window: MaintenanceWindow, now: datetime) -> MaintenanceView:
    return MaintenanceView(**window.model_dump(), phase=window.phase_at(now))


def _refused(err: MaintenanceRefused, status: int = 422) -> ApiError:
    return ApiError(status, err.message, [FieldError(loc=err.field, msg=err.message, type="value")])


def _windows(ctx: ApiContext) -> MaintenanceWindows:
    return MaintenanceWindows(ctx.store().database)


# ---- the ingest check ---------------------------------------------------------------------


class _Seen:
    """Per API process: the window (or none) last found for each service, and when."""

    def __init__(self) -> None:
        self.by_service: dict[str, tuple[float, MaintenanceWindow | None]] = {}


_seen: weakref.WeakKeyDictionary[ApiContext, _Seen] = weakref.WeakKeyDictionary()


def forget(ctx: ApiContext) -> None:
    _seen.pop(ctx, None)


async def active_window(ctx: ApiContext, service: str) -> MaintenanceWindow | None:
    """The window holding ``service``'s pages now, if any (an indexed query, briefly cached)."""
    seen = _seen.setdefault(ctx, _Seen())
    now, clock = datetime.now(UTC), time.monotonic()
    hit = seen.by_service.get(service)
    if hit is None or clock - hit[0] >= CACHE_SECONDS:
        window = await asyncio.to_thread(_windows(ctx).active_for, service, now)
        if len(seen.by_service) >= _CACHE_SERVICES:
            seen.by_service.clear()
        seen.by_service[service] = (clock, window)
        hit = (clock, window)
    window = hit[1]
    return window if window is not None and window.active_at(now) else None


# ---- endpoints --------------------------------------------------------------------------


_REFUSED: dict[int | str, dict[str, object]] = {
    **BODY_RESPONSES,
    404: {"model": ErrorBody, "description": "No such window"},
    409: {"model": ErrorBody, "description": "The window is over already"},
}


@router.post(
    "/maintenance",
    status_code=201,
    response_model=MaintenanceView,
    responses=_REFUSED,
    summary="Put a service in maintenance, now or later: its alerts page nobody meanwhile",
)
async def start_maintenance(body: NewMaintenance, request: Request) -> MaintenanceView:
    ctx = get_ctx(request)
    now = datetime.now(UTC)
    added = await asyncio.to_thread(added_integrations, ctx.data_dir)
    try:
        new = validate_window(
            ctx.policy(),
            added_services=[a.integration.service for a in added.integrations],
            service=body.service,
            starts_at=body.starts_at or now,
            ends_at=body.ends_at,
            reason=body.reason,
            by=body.by,
            now=now,
        )
    except MaintenanceRefused as err:
        raise _refused(err) from None
    windows = _windows(ctx)
    window = await asyncio.to_thread(windows.add, new, now)
    try:
        client = await ctx.client()
        await client.start_workflow(
            MaintenanceWindowWorkflow.run,
            window,
            id=maintenance_workflow_id(window.id),
            task_queue=ctx.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Maintenance {window.id} · {window.service}: {window.reason}"[:400],
        )
    except BaseException:
        # Without its workflow nobody would announce it or release what it holds: undo.
        await asyncio.to_thread(windows.remove, window.id)
        raise
    finally:
        forget(ctx)
    return _view(window, now)


@router.get(
    "/maintenance",
    response_model=list[MaintenanceView],
    summary="Maintenance windows on or to come (all of them with ?all=true), soonest first",
)
async def list_maintenance(
    request: Request,
    service: str | None = Query(default=None, min_length=1, max_length=200, pattern=PRINTABLE),
    all: bool = Query(default=False, description="Include windows that are over"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[MaintenanceView]:
    ctx = get_ctx(request)
    now = datetime.now(UTC)
    rows = await asyncio.to_thread(
        _windows(ctx).list, service=service, now=now, include_past=all, limit=limit
    )
    return [_view(w, now) for w in rows]


@router.post(
    "/maintenance/{window_id}/end",
    response_model=MaintenanceView,
    responses=_REFUSED,
    summary="End a window early (or cancel one not started): held incidents start paging",
)
async def end_maintenance(
    body: EndRequest, request: Request, window_id: int = Path(ge=1, le=2**62)
) -> MaintenanceView:
    ctx = get_ctx(request)
    now = datetime.now(UTC)
    windows = _windows(ctx)
    window = await asyncio.to_thread(windows.get, window_id)
    if window is None:
        raise ApiError(404, f"no maintenance window {window_id}")
    try:
        by = check_actor(ctx.policy(), body.by)
        # Ended early already (a retry, or someone else): send the signal again.
        if not window.ended_early:
            check_end(window, now)
            ended = await asyncio.to_thread(windows.end, window_id, by, now)
            window = ended or await asyncio.to_thread(windows.get, window_id) or window
            if not window.ended_early:
                check_end(window, datetime.now(UTC))  # it ran out meanwhile: 409
    except MaintenanceRefused as err:
        raise _refused(err, 409 if err.field == "id" else 422) from None
    finally:
        forget(ctx)
    if window.ended_at is None:  # pragma: no cover - ended_early implies ended_at
        raise ApiError(500, "the window was neither ended nor over; retry")
    client = await ctx.client()
    handle = client.get_workflow_handle(maintenance_workflow_id(window_id))
    try:
        await handle.signal(
            MaintenanceWindowWorkflow.end,
            EndMaintenance(by=window.ended_by or by, at=window.ended_at),
        )
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:  # finished: nothing left to announce
            raise
    return _view(window, now)
