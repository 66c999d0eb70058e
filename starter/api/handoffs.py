"""The weekly handoff: ``GET /handoffs``, ``GET /handoffs/latest``, ``POST /handoffs/notes``,
``POST /handoffs/{id}/ack-test``, ``POST /handoffs/{id}/confirm``. Behind the API token.

``{id}`` is a handoff id (``handoff/primary/2026-12-07T14:00Z``) or ``latest``: the newest
handoff still waiting for acknowledgements that tests the person acting (what
``firewatch ack-test`` and the SMS and Slack replies use). Acknowledgements and
confirmations are updates of the handoff's workflow: the answer says what it recorded.
Ingest also calls :func:`integration_seen` (the report's "Monitoring health").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.handoff import (
    AckVia,
    HandoffNote,
    HandoffResult,
    TestPage,
    findings,
    render_result,
)
from starter.api.auth import require_api_token
from starter.api.bodies import Body
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import AUTH_RESPONSES, BODY_RESPONSES, COMMON_RESPONSES, ApiError, ErrorBody
from storage.handoffs import Handoffs
from workflows.handoff import AckTest, ConfirmContact, HandoffWorkflow
from workflows.test_page import TRY_FOR, TestPageInput, TestPageResult, TestPageWorkflow

log = logging.getLogger(__name__)

router = APIRouter(
    tags=["handoffs"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)

NOTE_CHARS = 4000
Method = Literal["sms", "voice", "slack", "email"]
RoleName = Literal["primary", "secondary"]

_rows: weakref.WeakKeyDictionary[ApiContext, Handoffs] = weakref.WeakKeyDictionary()


def handoffs_of(ctx: ApiContext) -> Handoffs:
    """One per API context (its throttle of ``integration_seen`` writes lives in it)."""
    found = _rows.get(ctx)
    if found is None:
        found = _rows[ctx] = Handoffs(ctx.store().database)
    return found


async def integration_seen(ctx: ApiContext, integration: str | None) -> None:
    """An alert from ``integration`` arrived: remember when (at most once a minute). Never
    fails the ingest that calls it."""
    if not integration:
        return
    try:
        rows = handoffs_of(ctx)
        if rows.touch_due(integration):
            await asyncio.to_thread(rows.touch_integration, integration)
    except Exception:  # pragma: no cover - a report detail must not cost an alert
        log.exception("could not record that %s sent an alert", integration)


class HandoffView(HandoffResult):
    text: str = Field(description="The report and the test-page results, as printed")
    findings: list[str] = Field(description="What needs attention (silent integrations, ...)")


def _view(result: HandoffResult) -> HandoffView:
    return HandoffView(
        **result.model_dump(), text=render_result(result), findings=findings(result.report)
    )


class NewNote(Body):
    by: str = Field(min_length=1, max_length=200, description="Who (a roster name)")
    text: str = Field(min_length=1, max_length=NOTE_CHARS)


class AckTestRequest(Body):
    by: str = Field(min_length=1, max_length=200, description="Whose test page (roster name)")
    method: Method
    via: AckVia = "api"


class ConfirmRequest(Body):
    by: str = Field(min_length=1, max_length=200, description="The incoming person")
    via: AckVia = "api"


_REFUSED: dict[int | str, dict[str, object]] = {
    **BODY_RESPONSES,
    404: {"model": ErrorBody, "description": "No such handoff"},
    409: {"model": ErrorBody, "description": "The handoff refused it (over, no such page)"},
}


@router.get(
    "/handoffs",
    response_model=list[HandoffView],
    summary="Recent weekly handoffs, newest first: report and test-page results",
)
async def list_handoffs(
    request: Request,
    role: RoleName | None = Query(default=None),
    limit: int = Query(default=10, ge=1, le=200),
) -> list[HandoffView]:
    rows = await asyncio.to_thread(handoffs_of(get_ctx(request)).recent, limit, role)
    return [_view(r) for r in rows]


@router.get(
    "/handoffs/latest",
    response_model=HandoffView,
    responses={404: {"model": ErrorBody, "description": "No handoff yet"}},
    summary="The newest handoff (of one rotation with ?role=)",
)
async def latest_handoff(
    request: Request, role: RoleName | None = Query(default=None)
) -> HandoffView:
    found = await asyncio.to_thread(handoffs_of(get_ctx(request)).latest, role)
    if found is None:
        raise ApiError(404, "no handoff has run yet")
    return _view(found)


@router.post(
    "/handoffs/notes",
    status_code=201,
    response_model=HandoffNote,
    responses=BODY_RESPONSES,
    summary="A note for the next handoff (knowledge transfer), by the outgoing person",
)
async def add_note(body: NewNote, request: Request) -> HandoffNote:
    ctx = get_ctx(request)
    _on_roster(ctx, body.by)
    return await asyncio.to_thread(handoffs_of(ctx).add_note, body.by, body.text)


def _on_roster(ctx: ApiContext, name: str) -> None:
    if ctx.policy().roster.person(name) is None:
        raise ApiError(422, f"{name!r} is not on the roster")


async def find_handoff(ctx: ApiContext, handoff_id: str, by: str) -> HandoffResult:
    rows = handoffs_of(ctx)
    if handoff_id != "latest":
        found = await asyncio.to_thread(rows.get, handoff_id)
        if found is None:
            raise ApiError(404, f"no handoff {handoff_id}")
        return found
    recent = await asyncio.to_thread(rows.recent, 10)
    mine = [r for r in recent if any(p.person == by for p in r.test_pages)]
    waiting = [r for r in mine if r.status == "testing"]
    choices = waiting or mine or recent
    if not choices:
        raise ApiError(404, "no handoff has run yet")
    return choices[0]


async def ack_test(ctx: ApiContext, handoff_id: str, body: AckTestRequest) -> TestPage:
    """Shared with the SMS and Slack replies."""
    found = await find_handoff(ctx, handoff_id, body.by)
    client = await ctx.client()
    handle = client.get_workflow_handle(found.workflow_id)
    request = AckTest(by=body.by, method=body.method, via=body.via)
    try:
        page: TestPage = await handle.execute_update(HandoffWorkflow.ack_test, request)
    except WorkflowUpdateFailedError as err:
        raise ApiError(409, _reason(err)) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(409, f"handoff {found.handoff_id} is over; its result is kept") from None
        raise
    return page


async def confirm(ctx: ApiContext, handoff_id: str, body: ConfirmRequest) -> HandoffResult:
    found = await find_handoff(ctx, handoff_id, body.by)
    client = await ctx.client()
    handle = client.get_workflow_handle(found.workflow_id)
    try:
        result: HandoffResult = await handle.execute_update(
            HandoffWorkflow.confirm_contact, ConfirmContact(by=body.by, via=body.via)
        )
    except WorkflowUpdateFailedError as err:
        raise ApiError(409, _reason(err)) from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ApiError(409, f"handoff {found.handoff_id} is over; its result is kept") from None
        raise
    return result


def _reason(err: WorkflowUpdateFailedError) -> str:
    return str(getattr(err.cause, "message", None) or err.cause or err)


@router.post(
    "/handoffs/{handoff_id:path}/ack-test",
    response_model=TestPage,
    responses=_REFUSED,
    summary="Acknowledge a handoff test page (one contact method); handoff id or `latest`",
)
async def ack_test_endpoint(body: AckTestRequest, request: Request, handoff_id: str) -> TestPage:
    return await ack_test(get_ctx(request), handoff_id, body)


@router.post(
    "/handoffs/{handoff_id:path}/confirm",
    response_model=HandoffView,
    responses=_REFUSED,
    summary="The incoming person confirms their contact details; handoff id or `latest`",
)
async def confirm_endpoint(body: ConfirmRequest, request: Request, handoff_id: str) -> HandoffView:
    return _view(await confirm(get_ctx(request), handoff_id, body))


# ---- a test page by hand ----------------------------------------------------------------------


class TestPageRequest(Body):
    by: str = Field(min_length=1, max_length=200, description="Who asks (roster name)")


@router.post(
    "/people/{name}/test-page",
    response_model=TestPageResult,
    responses={**BODY_RESPONSES, 404: {"model": ErrorBody, "description": "Not on the roster"}},
    summary="Send a test notification through each of a person's contact methods, now",
)
async def test_page(
    body: TestPageRequest, request: Request, name: str = Path(max_length=200)
) -> TestPageResult:
    """Answers once every method was tried (at most two minutes): which reached its provider."""
    ctx = get_ctx(request)
    _on_roster(ctx, body.by)
    roster = ctx.policy().roster
    person, asker = roster.person(name), roster.person(body.by)
    if person is None:
        raise ApiError(404, f"{name!r} is not on the roster")
    assert asker is not None
    client = await ctx.client()
    handle = await client.start_workflow(
        TestPageWorkflow.run,
        TestPageInput(person=person, by=asker.label),
        id=f"test-page/{name}/{uuid.uuid4().hex[:12]}",
        task_queue=ctx.settings.task_queue,
        static_summary=f"Test page for {person.label}, asked by {asker.label}",
    )
    try:
        result: TestPageResult = await asyncio.wait_for(
            handle.result(), timeout=TRY_FOR.total_seconds() + 30
        )
    except TimeoutError:
        raise ApiError(503, f"no worker finished the test page ({handle.id})") from None
    return result
