"""POST /alerts: a small JSON schema of our own, for scripts and curl.

    curl -X POST http://127.0.0.1:8000/alerts -H "Authorization: Bearer $TOKEN" \\
         -H 'Content-Type: application/json' \\
         -d '{"summary": "Checkout is down", "severity": "P1", "dedup_key": "checkout-down"}'
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from domain.policy import Integration
from starter.api.auth import bearer_integration, match_integration
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    ApiError,
    FieldError,
)
from starter.api.fast_lane import LaneRoute, bearer_token, json_response
from starter.api.ingest_common import (
    Outcome,
    Timestamp,
    admit_alert,
    build_alert,
    detection_time,
    map_severity,
    new_dedup_key,
    resolve_alert,
)

AlertSeverity = Literal["P0", "P1", "P2", "P3", "critical", "error", "warning", "info"]


class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a script should fail loudly

    action: Literal["trigger", "resolve"] = "trigger"
    summary: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Required for trigger"
    )
    severity: AlertSeverity | None = Field(
        default=None, description="P0-P3, or a PagerDuty severity mapped by the policy"
    )
    service: str | None = Field(
        default=None, min_length=1, max_length=200, description="Defaults to the integration's"
    )
    dedup_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Generated when absent; required for resolve",
    )
    detected_at: Timestamp | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list, max_length=50)


class GenericAccepted(BaseModel):
    status: Literal["success"] = "success"
    action: Literal["trigger", "resolve"]
    dedup_key: str
    outcome: Outcome
    message: str | None = Field(
        default=None,
        description="Present when the service is in maintenance: why nobody was paged",
        examples=[
            "accepted; nobody paged: api is in maintenance until 14:00 UTC (DB upgrade, window 3)"
        ],
    )


router = APIRouter(
    tags=["ingest"], responses={**AUTH_RESPONSES, **BODY_RESPONSES, **COMMON_RESPONSES}
)


def _missing(field: str, why: str) -> ApiError:
    return ApiError(
        422, "invalid request", [FieldError(loc=field, msg=f"Field required {why}", type="missing")]
    )


@router.post(
    "/alerts",
    status_code=202,
    response_model=GenericAccepted,
    summary="Trigger or resolve an alert (generic JSON)",
)
async def generic(
    body: GenericAlert,
    request: Request,
    integration: Integration = bearer_integration("generic"),
) -> Response:
    # Well-formed alerts with a known token rarely get here: see FAST_LANE.
    return json_response(await process_alert(get_ctx(request), integration, body))


async def process_alert(
    ctx: ApiContext, integration: Integration, body: GenericAlert
) -> tuple[int, bytes]:
    """Carry out an authenticated alert: (status, JSON body) of the answer."""
    if body.action == "resolve":
        if body.dedup_key is None:
            raise _missing("dedup_key", "to resolve")
        outcome = await resolve_alert(ctx, integration, "generic", body.dedup_key)
        return _accepted(
            GenericAccepted(action="resolve", dedup_key=body.dedup_key, outcome=outcome)
        )
    if body.summary is None:
        raise _missing("summary", "to trigger")
    now = datetime.now(UTC)
    service = body.service or integration.service
    key = body.dedup_key or new_dedup_key(service, body.summary, now)
    alert = build_alert(
        source="generic",
        dedup_key=key,
        summary=body.summary,
        service=service,
        severity=map_severity(
            ctx.policy(), integration, body.severity, {**body.labels, **body.details}
        ),
        integration=integration.name,
        received_at=now,
        detected_at=detection_time(body.detected_at, now),
        labels=body.labels,
        details=body.details,
        links=body.links,
    )
    outcome, note = await admit_alert(ctx, alert)
    return _accepted(
        GenericAccepted(action="trigger", dedup_key=key, outcome=outcome, message=note)
    )


def _accepted(answer: GenericAccepted) -> tuple[int, bytes]:
    return 202, answer.model_dump_json(exclude_none=True).encode()


def _token_integration(
    ctx: ApiContext, _body: BaseModel, headers: Mapping[bytes, bytes]
) -> Integration | None:
    token = bearer_token(headers)
    return match_integration(ctx, ("generic",), token) if token else None


FAST_LANE = LaneRoute("/alerts", GenericAlert, _token_integration, process_alert)
