"""The change feed: deployments and config changes, by service (``domain.changes``).

* ``POST /v2/change/enqueue`` is a drop-in for PagerDuty's Change Events API: a CI job or
  tool that already sends PagerDuty change events points its URL here. ``routing_key``
  selects a ``pagerduty`` integration (compared in constant time against every one), and
  with it the change's service. It answers 202 as PagerDuty does, and 400 in PagerDuty's
  shape (``{"status": "invalid event", "message", "errors": [...]}``) for a missing or
  unknown routing key or a bad body. PagerDuty change events carry no key of their own, so
  each one is a new change.
* ``POST /changes`` is the generic endpoint for CI/CD (the API token, like every write to
  the incidents API). An ``id`` makes it idempotent: a re-sent deploy with the same id is
  answered 200 with the change as first stored, and is not stored twice.
* ``GET /changes`` lists them, newest first.

Changes live in Firewatch's database, not in Temporal, so these endpoints answer while
Temporal is down. A refused request stores nothing.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from domain.changes import Change, ChangeLink
from domain.policy import Integration
from starter.api.auth import match_integration, require_api_token
from starter.api.bodies import Body
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    PAGERDUTY_CHANGE_PATH,
    ApiError,
    FieldError,
    PagerDutyErrorBody,
    field_errors,
)
from starter.api.incidents import PRINTABLE
from starter.api.ingest_common import Timestamp

MAX_LINKS = 50
WHO_CHARS = 200  # domain.changes.Change.who

router = APIRouter()

# ---- PagerDuty Change Events API ------------------------------------------------------------


class ChangeEventPayload(BaseModel):
    summary: str = Field(min_length=1, max_length=1024, description="What changed")
    timestamp: Timestamp | None = Field(
        default=None, description="When the change happened (ISO 8601); default: on receipt"
    )
    source: str | None = Field(
        default=None,
        max_length=255,
        description="Where the change came from (a pipeline, a host); shown as who made it",
    )
    custom_details: dict[str, Any] | None = Field(
        default=None, description="Free-form; kept with the change"
    )


class ChangeEvent(BaseModel):
    routing_key: str = Field(
        min_length=1, max_length=255, description="The key of a pagerduty integration"
    )
    payload: ChangeEventPayload
    links: list[ChangeLink] = Field(default_factory=list, max_length=MAX_LINKS)


class ChangeEventAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Change event processed"


def _invalid_event(loc: str, msg: str, type_: str) -> ApiError:
    return ApiError(400, "Event object is invalid", [FieldError(loc=loc, msg=msg, type=type_)])


async def change_event_integration(request: Request) -> Integration:
    """The integration whose key the event carries, before the rest of it is validated."""
    try:
        data = await request.json()
    except ValueError:
        data = None  # malformed JSON was answered with 400 before we run
    key = data.get("routing_key") if isinstance(data, dict) else None
    if key is None or key == "":
        raise _invalid_event("routing_key", "Field required", "missing")
    if not isinstance(key, str):
        raise _invalid_event("routing_key", "Input should be a valid string", "string_type")
    integration = match_integration(get_ctx(request), ("pagerduty",), key)
    if integration is None:
        raise _invalid_event(
            "routing_key",
            "Invalid routing key: not the key of a configured PagerDuty integration",
            "invalid",
        )
    return integration


_PD_ERROR_TEXTS: dict[int | str, str] = {
    400: "Invalid event, or a missing or unknown routing_key: errors[] says which",
    413: "Body over 512 KB",
    415: "Body is not JSON",
    429: "Overloaded; retry after Retry-After seconds",
    # Declared so FastAPI does not document its own 422: PagerDuty answers 400.
    "4XX": "Any other client error",
}
_PD_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": PagerDutyErrorBody, "description": text}
    for code, text in _PD_ERROR_TEXTS.items()
}


@router.post(
    PAGERDUTY_CHANGE_PATH,
    status_code=202,
    response_model=ChangeEventAccepted,
    responses=_PD_ERRORS,
    tags=["ingest"],
    summary="PagerDuty Change Events API: record a deployment or config change",
)
async def enqueue_change(
    event: ChangeEvent,
    request: Request,
    integration: Integration = Depends(change_event_integration),
) -> ChangeEventAccepted:
    now = datetime.now(UTC)
    payload = event.payload
    source = payload.source.strip() if payload.source else ""
    details = dict(payload.custom_details or {})
    if len(source) > WHO_CHARS:
        details.setdefault("source", source)  # kept whole; who shows the start of it
    change = _change(
        400,
        change_id=uuid.uuid4().hex,
        service=integration.service,
        summary=payload.summary,
        source="pagerduty",
        who=source[:WHO_CHARS] or None,
        at=(payload.timestamp or now).astimezone(UTC),
        received_at=now,
        integration=integration.name,
        links=event.links,
        details=details,
    )
    await _record(get_ctx(request), change)
    return ChangeEventAccepted()


# ---- Firewatch's own change feed ------------------------------------------------------------


class NewChange(Body):
    """A change reported by CI/CD (or ``firewatch change add``)."""

    service: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    summary: str = Field(min_length=1, max_length=1024, examples=["Deploy v412"])
    who: str = Field(min_length=1, max_length=WHO_CHARS, description="Who (or what) made it")
    at: Timestamp | None = Field(
        default=None, description="When it happened (ISO 8601 with offset); default: on receipt"
    )
    links: list[ChangeLink] = Field(default_factory=list, max_length=MAX_LINKS)
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Your key for the change, e.g. the pipeline run: a repeat is stored once",
    )
    details: dict[str, Any] = Field(default_factory=dict, description="Free-form, e.g. the SHA")
    source: Literal["api", "cli"] = "api"


_REPEAT: dict[int | str, dict[str, Any]] = {
    200: {"model": Change, "description": "Already recorded (same service and id): as stored"},
}


@router.post(
    "/changes",
    status_code=201,
    response_model=Change,
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES, **BODY_RESPONSES, **_REPEAT},
    dependencies=[Depends(require_api_token)],
    tags=["changes"],
    summary="Record a deployment or config change (CI/CD)",
)
async def create_change(body: NewChange, request: Request, response: Response) -> Change:
    now = datetime.now(UTC)
    change = _change(
        422,
        change_id=body.id or uuid.uuid4().hex,
        service=body.service,
        summary=body.summary,
        source=body.source,
        who=body.who,
        at=(body.at or now).astimezone(UTC),
        received_at=now,
        links=body.links,
        details=body.details,
    )
    stored = await _record(get_ctx(request), change)
    if stored is not change:
        response.status_code = 200
    return stored


_SPACED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


def _query_timestamp(value: Any) -> Any:
    # An unescaped '+' in a URL's query string arrives as a space: ?since=...T09:00:00+00:00
    return _SPACED_OFFSET.sub(r"+\1", value) if isinstance(value, str) else value


QueryTimestamp = Annotated[Timestamp, BeforeValidator(_query_timestamp)]


@router.get(
    "/changes",
    response_model=list[Change],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
    dependencies=[Depends(require_api_token)],
    tags=["changes"],
    summary="Recent changes, newest first",
)
async def list_changes(
    request: Request,
    service: str | None = Query(default=None, min_length=1, max_length=200, pattern=PRINTABLE),
    since: QueryTimestamp | None = Query(
        default=None, description="Only changes at or after this time (ISO 8601 with offset)"
    ),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[Change]:
    store = get_ctx(request).store()
    return await asyncio.to_thread(store.changes, service, since, limit)


# ---- shared -----------------------------------------------------------------------------


_INVALID = {400: "Event object is invalid", 422: "invalid request"}


def _change(status: int, **fields: Any) -> Change:
    """The change to store, or an error naming the field (400 in PagerDuty's shape)."""
    try:
        return Change(**fields)
    except ValidationError as exc:
        raise ApiError(status, _INVALID[status], field_errors(exc.errors())) from exc


async def _record(ctx: ApiContext, change: Change) -> Change:
    """Store ``change``; a repeat of a stored one answers the stored one instead."""
    store = ctx.store()
    if await asyncio.to_thread(store.record_change, change):
        return change
    stored = await asyncio.to_thread(store.change, change.service, change.change_id)
    if stored is None:  # pragma: no cover - rows are never deleted
        raise ApiError(500, "the change was neither stored nor found; retry")
    return stored
