"""Post-mortems and their action items (issue 13).

Lists read the database rows the post-mortem workflows keep current (no Temporal call):

    GET  /postmortems[?open=true]
    GET  /actions[?owner=dave][&overdue=true][&incident_id=INC-…]

Changes are updates of the incident's post-mortem workflow (``workflows.postmortem``),
whose validators decide (``domain.postmortem``); a refused one changes nothing:

    GET  /incidents/{id}/postmortem
    POST /incidents/{id}/postmortem/reschedule   {by, review_at, reason}
    POST /incidents/{id}/postmortem/meeting      {by, timeline_review, …, what_went_well, …}
    POST /incidents/{id}/postmortem/complete     {by}
    POST /incidents/{id}/actions                 {title, owner, due, kind, by?}
    POST /incidents/{id}/actions/{n}/edit        {by, title?, owner?, due?, kind?}
    POST /incidents/{id}/actions/{n}/close       {by, evidence}
    POST /incidents/{id}/actions/{n}/verify      {by}

An owner off the roster or a due date in the past is answered 422 before the workflow is
asked; a change the post-mortem's state refuses (verified by its own owner, completing with
open items, ...) 409; an incident without a post-mortem, or one that is complete, 404.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.ids import parse_incident_id, postmortem_workflow_id
from domain.postmortem import (
    TEXT_MAX,
    TITLE_MAX,
    ActionItem,
    ActionItemKind,
    AddActionItem,
    CloseActionItem,
    CompletePostmortem,
    EditActionItem,
    PostmortemError,
    RecordMeeting,
    RescheduleReview,
    VerifyActionItem,
    local_today,
    parse_kind,
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
from starter.api.incidents import IncidentIdPath
from starter.api.ingest_common import Timestamp
from starter.incidents import ActionRejected, IncidentNotFound
from storage.postmortems import ActionItemRow, PostmortemRow, Postmortems
from workflows.postmortem import PostMortemState, PostMortemWorkflow

router = APIRouter(
    tags=["postmortems"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)

_REFUSED: dict[int | str, dict[str, object]] = {
    **BODY_RESPONSES,
    404: {"model": ErrorBody, "description": "No open post-mortem for this incident"},
    409: {"model": ErrorBody, "description": "The post-mortem refused the change"},
}
By = Field(min_length=1, max_length=64, description="Who (a roster name)")


class RescheduleBody(Body):
    by: str = By
    review_at: Timestamp = Field(description="ISO 8601 with offset; in the future")
    reason: str = Field(default="", max_length=500)


class NewActionItem(Body):
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    owner: str = Field(min_length=1, max_length=64, description="A roster name")
    due: date = Field(description="YYYY-MM-DD, the team's time zone; today or later")
    kind: str = Field(
        min_length=1,
        max_length=40,
        description="prevention, monitoring, runbook, process or training",
    )
    by: str | None = Field(default=None, min_length=1, max_length=64, description="Default: owner")


class EditBody(Body):
    by: str = By
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    owner: str | None = Field(default=None, min_length=1, max_length=64)
    due: date | None = None
    kind: str | None = Field(default=None, min_length=1, max_length=40)


class CloseBody(Body):
    by: str = By
    evidence: str = Field(min_length=1, max_length=TEXT_MAX, description="A link or text")


class ByBody(Body):
    by: str = By


def _rows(ctx: ApiContext) -> Postmortems:
    return Postmortems(ctx.store().database)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, message, [FieldError(loc=field, msg=message, type="value")])


def _kind(value: str, field: str = "kind") -> ActionItemKind:
    try:
        return parse_kind(value)
    except PostmortemError as err:
        raise _invalid(field, str(err)) from None


def _precheck(ctx: ApiContext, owner: str | None, due: date | None) -> None:
    """What the API can tell at once from the policy (the workflow checks again)."""
    policy = ctx.policy()
    if owner is not None and policy.roster.person(owner) is None:
        known = ", ".join(p.name for p in policy.roster.people)
        raise _invalid("owner", f"owner {owner!r} is not on the roster (one of: {known})")
    today = local_today(datetime.now(UTC), policy.business_hours)
    if due is not None and due < today:
        raise _invalid(
            "due",
            f"due date {due.isoformat()} is in the past (today is {today.isoformat()}"
            f" in {policy.business_hours.timezone})",
        )


async def _update(ctx: ApiContext, incident_id: str, update: Any, request: BaseModel) -> Any:
    if parse_incident_id(incident_id) is None:
        raise IncidentNotFound(f"{incident_id!r} is not an incident id (INC-YYYY-MM-DD-###)")
    client = await ctx.client()
    handle = client.get_workflow_handle(postmortem_workflow_id(incident_id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(update, request), timeout=ctx.settings.worker_timeout_s
        )
    except TimeoutError:
        raise ApiError(503, "no worker answered in time; retry") from None
    except WorkflowUpdateFailedError as err:
        raise ActionRejected(getattr(err.cause, "message", None) or str(err.cause)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise IncidentNotFound(
                f"no open post-mortem for {incident_id} (none was started, or it is complete)"
            ) from err
        raise


# ---- lists (the database) ---------------------------------------------------------------


@router.get(
    "/postmortems",
    response_model=list[PostmortemRow],
    summary="Post-mortems, newest review first (only those not complete with ?open=true)",
)
async def list_postmortems(
    request: Request,
    open: bool = Query(default=False, description="Only post-mortems not complete"),
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[PostmortemRow]:
    rows = _rows(get_ctx(request))
    return await asyncio.to_thread(lambda: rows.postmortems(open_only=open, limit=limit))


@router.get(
    "/actions",
    response_model=list[ActionItemRow],
    summary="Action items across incidents, soonest due first",
)
async def list_actions(
    request: Request,
    owner: str | None = Query(default=None, min_length=1, max_length=64),
    overdue: bool = Query(default=False, description="Only open items past their due date"),
    incident_id: str | None = Query(default=None, min_length=1, max_length=64),
    open: bool = Query(default=False, description="Only items not verified"),
    limit: int = Query(default=500, ge=1, le=5000),
) -> list[ActionItemRow]:
    rows, now = _rows(get_ctx(request)), datetime.now(UTC)
    return await asyncio.to_thread(
        lambda: rows.action_items(
            owner=owner,
            overdue_at=now if overdue else None,
            incident_id=incident_id,
            open_only=open,
            now=now,
            limit=limit,
        )
    )


# ---- one post-mortem (its workflow) -----------------------------------------------------


@router.get(
    "/incidents/{incident_id}/postmortem",
    response_model=PostMortemState,
    responses={404: {"model": ErrorBody, "description": "No post-mortem for this incident"}},
    summary="The post-mortem as its workflow holds it: stage, notes, action items",
)
async def show_postmortem(request: Request, incident_id: str = IncidentIdPath) -> PostMortemState:
    ctx = get_ctx(request)
    if parse_incident_id(incident_id) is None:
        raise IncidentNotFound(f"{incident_id!r} is not an incident id (INC-YYYY-MM-DD-###)")
    handle = (await ctx.client()).get_workflow_handle(postmortem_workflow_id(incident_id))
    try:
        state: PostMortemState = await asyncio.wait_for(
            handle.query(PostMortemWorkflow.state), timeout=ctx.settings.worker_timeout_s
        )
    except TimeoutError:
        raise ApiError(503, "no worker answered in time; retry") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise IncidentNotFound(f"no post-mortem for {incident_id}") from err
        raise
    return state


@router.post(
    "/incidents/{incident_id}/postmortem/reschedule",
    response_model=PostMortemState,
    responses=_REFUSED,
    summary="Move the review (before it is held); the attendees are told",
)
async def reschedule(
    body: RescheduleBody, request: Request, incident_id: str = IncidentIdPath
) -> PostMortemState:
    req = RescheduleReview(by=body.by, review_at=body.review_at, reason=body.reason)
    result: PostMortemState = await _update(
        get_ctx(request), incident_id, PostMortemWorkflow.reschedule_review, req
    )
    return result


@router.post(
    "/incidents/{incident_id}/postmortem/meeting",
    response_model=PostMortemState,
    responses=_REFUSED,
    summary="Record the review's notes and lessons learned (marks it held the first time)",
)
async def meeting(
    body: RecordMeeting, request: Request, incident_id: str = IncidentIdPath
) -> PostMortemState:
    result: PostMortemState = await _update(
        get_ctx(request), incident_id, PostMortemWorkflow.record_meeting, body
    )
    return result


@router.post(
    "/incidents/{incident_id}/postmortem/complete",
    response_model=PostMortemState,
    responses=_REFUSED,
    summary="Complete a post-mortem (409 while the meeting, lessons or any item is open)",
)
async def complete(
    body: ByBody, request: Request, incident_id: str = IncidentIdPath
) -> PostMortemState:
    result: PostMortemState = await _update(
        get_ctx(request), incident_id, PostMortemWorkflow.complete, CompletePostmortem(by=body.by)
    )
    return result


@router.post(
    "/incidents/{incident_id}/actions",
    status_code=201,
    response_model=ActionItem,
    responses=_REFUSED,
    summary="Add an action item; its owner is told",
)
async def add_action(
    body: NewActionItem, request: Request, incident_id: str = IncidentIdPath
) -> ActionItem:
    ctx = get_ctx(request)
    kind = _kind(body.kind)
    _precheck(ctx, body.owner, body.due)
    req = AddActionItem(
        by=body.by or body.owner, title=body.title, owner=body.owner, due=body.due, kind=kind
    )
    result: ActionItem = await _update(ctx, incident_id, PostMortemWorkflow.add_action_item, req)
    return result


ItemPath = Path(ge=1, le=1000, description="The item's number (#1, #2, ...)")


@router.post(
    "/incidents/{incident_id}/actions/{number}/edit",
    response_model=ActionItem,
    responses=_REFUSED,
    summary="Change an item's title, owner, due date or kind (a new owner is told)",
)
async def edit_action(
    body: EditBody, request: Request, incident_id: str = IncidentIdPath, number: int = ItemPath
) -> ActionItem:
    ctx = get_ctx(request)
    kind = _kind(body.kind) if body.kind is not None else None
    _precheck(ctx, body.owner, body.due)
    req = EditActionItem(
        by=body.by, number=number, title=body.title, owner=body.owner, due=body.due, kind=kind
    )
    result: ActionItem = await _update(ctx, incident_id, PostMortemWorkflow.edit_action_item, req)
    return result


@router.post(
    "/incidents/{incident_id}/actions/{number}/close",
    response_model=ActionItem,
    responses=_REFUSED,
    summary="Close an item with evidence (a link or text); the team lead is asked to verify",
)
async def close_action(
    body: CloseBody, request: Request, incident_id: str = IncidentIdPath, number: int = ItemPath
) -> ActionItem:
    req = CloseActionItem(by=body.by, number=number, evidence=body.evidence)
    result: ActionItem = await _update(
        get_ctx(request), incident_id, PostMortemWorkflow.close_action_item, req
    )
    return result


@router.post(
    "/incidents/{incident_id}/actions/{number}/verify",
    response_model=ActionItem,
    responses=_REFUSED,
    summary="Verify a closed item (not by its owner); the last one completes the post-mortem",
)
async def verify_action(
    body: ByBody, request: Request, incident_id: str = IncidentIdPath, number: int = ItemPath
) -> ActionItem:
    req = VerifyActionItem(by=body.by, number=number)
    result: ActionItem = await _update(
        get_ctx(request), incident_id, PostMortemWorkflow.verify_action_item, req
    )
    return result
