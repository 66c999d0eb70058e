"""POST /v2/enqueue: a drop-in for PagerDuty's Events API v2.

``routing_key`` selects a ``pagerduty`` integration, and with it the service of the
incidents it opens. ``trigger`` opens or joins the incident for ``dedup_key`` (generated
when absent). ``acknowledge`` acknowledges the open incident, attributed to the
integration (``acknowledged_by`` is its name), as PagerDuty does, unless the integration
says ``acknowledge_events: false``. ``resolve`` resolves it (when the integration allows
auto-resolve). Acknowledge and resolve are answered 202 and ignored when nothing is open
for the key, as PagerDuty does. Every 202 follows Temporal's durable write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from domain.policy import Integration
from starter.api.auth import forbidden, match_integration, unauthorized
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    PAGERDUTY_PATH,
    ApiError,
    FieldError,
    PagerDutyErrorBody,
)
from starter.api.fast_lane import LaneRoute, json_response
from starter.api.ingest_common import (
    Timestamp,
    acknowledge_alert,
    admit_alert,
    build_alert,
    detection_time,
    map_severity,
    new_dedup_key,
    resolve_alert,
)


class PagerDutyLink(BaseModel):
    href: str = Field(min_length=1, max_length=2048)
    text: str | None = Field(default=None, max_length=1024)


class PagerDutyImage(BaseModel):
    src: str = Field(min_length=1, max_length=2048)
    href: str | None = Field(default=None, max_length=2048)
    alt: str | None = Field(default=None, max_length=1024)


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    summary: str = Field(min_length=1, max_length=1024, description="Shown as the incident summary")
    source: str = Field(min_length=1, max_length=255, description="Affected system, e.g. a host")
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: Timestamp | None = Field(default=None, description="When the problem was detected")
    component: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)
    class_: str | None = Field(default=None, alias="class", max_length=255)
    custom_details: dict[str, Any] | str | None = Field(
        default=None,
        description="Free-form; a `priority` or `severity` field of P0-P3 sets the severity",
    )


class PagerDutyEvent(BaseModel):
    routing_key: str = Field(min_length=1, max_length=255, description="The integration key")
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    payload: PagerDutyPayload | None = Field(default=None, description="Required for trigger")
    client: str | None = Field(default=None, max_length=255)
    client_url: str | None = Field(default=None, max_length=2048)
    links: list[PagerDutyLink] = Field(default_factory=list, max_length=50)
    images: list[PagerDutyImage] = Field(default_factory=list, max_length=50)


class PagerDutyAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


async def pagerduty_integration(request: Request) -> Integration:
    """Authenticate by ``routing_key`` before the rest of the event is validated."""
    try:
        data = await request.json()
    except ValueError:
        data = None  # malformed JSON was answered with 400 before we run
    key = data.get("routing_key") if isinstance(data, dict) else None
    if key is None or key == "":
        raise unauthorized("routing_key")
    if not isinstance(key, str):
        raise ApiError(
            400,
            "Event object is invalid",
            [
                FieldError(
                    loc="routing_key", msg="Input should be a valid string", type="string_type"
                )
            ],
        )
    integration = match_integration(get_ctx(request), ("pagerduty",), key)
    if integration is None:
        raise forbidden("routing_key: not a configured PagerDuty integration key")
    return integration


router = APIRouter(tags=["ingest"])

_PD_ERROR_TEXTS: dict[int | str, str] = {
    400: "Invalid event: errors[] names each field and reason",
    401: "routing_key missing",
    403: "routing_key unknown",
    413: "Body over 512 KB",
    415: "Body is not JSON",
    429: "Overloaded; retry after Retry-After seconds",
    503: "Temporal unavailable; retry after Retry-After seconds",
    # Declared so FastAPI does not document its own 422: PagerDuty answers 400.
    "4XX": "Any other client error",
}
_PD_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": PagerDutyErrorBody, "description": text}
    for code, text in _PD_ERROR_TEXTS.items()
}


@router.post(
    PAGERDUTY_PATH,
    status_code=202,
    response_model=PagerDutyAccepted,
    summary="PagerDuty Events API v2 (trigger, acknowledge, resolve)",
    responses=_PD_ERRORS,
)
async def enqueue(
    event: PagerDutyEvent,
    request: Request,
    integration: Integration = Depends(pagerduty_integration),
) -> Response:
    # Well-formed events with a known key rarely get here: see FAST_LANE.
    return json_response(await process_event(get_ctx(request), integration, event))


async def process_event(
    ctx: ApiContext, integration: Integration, event: PagerDutyEvent
) -> tuple[int, bytes]:
    """Carry out an authenticated event: (status, JSON body) of the answer."""
    if event.event_action == "trigger":
        summary = event.payload.summary if event.payload is not None else ""
        now = datetime.now(UTC)
        dedup_key = event.dedup_key or new_dedup_key(integration.service, summary, now)
        note = await _trigger(ctx, integration, event, dedup_key)
        return _accepted(dedup_key, note)
    if event.dedup_key is None:
        raise ApiError(
            400,
            "Event object is invalid",
            [
                FieldError(
                    loc="dedup_key", msg=f"Field required for {event.event_action}", type="missing"
                )
            ],
        )
    if event.event_action == "resolve":
        await resolve_alert(ctx, integration, "pagerduty", event.dedup_key)
    else:
        await acknowledge_alert(ctx, integration, "pagerduty", event.dedup_key)
    return _accepted(event.dedup_key)


def _accepted(dedup_key: str, note: str | None = None) -> tuple[int, bytes]:
    # Serialised here rather than re-validated against the response model (which still
    # documents the answer in the OpenAPI schema).
    answer = PagerDutyAccepted(dedup_key=dedup_key)
    if note is not None:  # the service is in maintenance: say why nobody was paged
        answer.message = f"{answer.message}; {note.removeprefix('accepted; ')}"
    return 202, answer.model_dump_json().encode()


def _event_integration(
    ctx: ApiContext, event: BaseModel, headers: Mapping[bytes, bytes]
) -> Integration | None:
    assert isinstance(event, PagerDutyEvent)
    return match_integration(ctx, ("pagerduty",), event.routing_key)


FAST_LANE = LaneRoute(PAGERDUTY_PATH, PagerDutyEvent, _event_integration, process_event)


async def _trigger(
    ctx: ApiContext, integration: Integration, event: PagerDutyEvent, dedup_key: str
) -> str | None:
    payload = event.payload
    if payload is None:
        raise ApiError(
            400,
            "Event object is invalid",
            [FieldError(loc="payload", msg="Field required for trigger", type="missing")],
        )
    custom = payload.custom_details if isinstance(payload.custom_details, dict) else {}
    now = datetime.now(UTC)
    details: dict[str, Any] = {
        "source": payload.source,
        "component": payload.component,
        "group": payload.group,
        "class": payload.class_,
        "custom_details": payload.custom_details,
        "client": event.client,
        "client_url": event.client_url,
        "images": [image.model_dump(exclude_none=True) for image in event.images] or None,
    }
    alert = build_alert(
        ("payload",),
        source="pagerduty",
        dedup_key=dedup_key,
        summary=payload.summary,
        service=integration.service,
        severity=map_severity(ctx.policy(), integration, payload.severity, custom),
        integration=integration.name,
        received_at=now,
        detected_at=detection_time(payload.timestamp, now),
        details={k: v for k, v in details.items() if v is not None},
        links=[link.href for link in event.links],
    )
    return (await admit_alert(ctx, alert))[1]
