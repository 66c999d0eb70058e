"""GET /integrations: each configured alert source, its ingest URL and key (masked unless asked).

``integration_rows`` is shared with ``firewatch integrations``, which reads the data dir
directly and so works while the API is down.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from domain.policy import IntegrationKind, Policy, Severity
from starter.api.auth import require_api_token
from starter.api.context import get_ctx
from starter.api.errors import AUTH_RESPONSES, COMMON_RESPONSES
from starter.secrets import Secrets, mask

PATHS: dict[IntegrationKind, str] = {
    "pagerduty": "/v2/enqueue",
    "alertmanager": "/alerts/alertmanager",
    "grafana": "/alerts/grafana",
    "generic": "/alerts",
}
AUTH: dict[IntegrationKind, str] = {
    "pagerduty": "routing_key in the event body",
    "alertmanager": "Authorization: Bearer <key> (http_config.authorization.credentials)",
    "grafana": "Authorization: Bearer <key>, and/or HMAC signature with hmac_secret",
    "generic": "Authorization: Bearer <key>",
}


class IntegrationInfo(BaseModel):
    name: str
    kind: IntegrationKind
    service: str
    url: str = Field(description="Where the monitoring tool sends alerts")
    auth: str
    key: str | None = Field(description="Masked unless show_secrets; null if not generated yet")
    hmac_secret: str | None = None
    auto_resolve: bool
    default_severity: Severity | None = None
    masked: bool


def integration_rows(
    policy: Policy, secrets: Secrets | None, base_url: str, *, show_secrets: bool = False
) -> list[IntegrationInfo]:
    base = base_url.rstrip("/")
    rows: list[IntegrationInfo] = []
    for integration in policy.integrations:
        secret = secrets.for_integration(integration.name) if secrets else None

        def shown(value: str | None) -> str | None:
            if value is None:
                return None
            return value if show_secrets else mask(value)

        rows.append(
            IntegrationInfo(
                name=integration.name,
                kind=integration.kind,
                service=integration.service,
                url=base + PATHS[integration.kind],
                auth=AUTH[integration.kind],
                key=shown(secret.key if secret else None),
                hmac_secret=shown(secret.hmac_secret if secret else None),
                auto_resolve=integration.auto_resolve,
                default_severity=integration.default_severity,
                masked=not show_secrets,
            )
        )
    return rows


router = APIRouter(
    tags=["operations"],
    dependencies=[Depends(require_api_token)],
    responses={**AUTH_RESPONSES, **COMMON_RESPONSES},
)


class IntegrationList(BaseModel):
    integrations: list[IntegrationInfo]
    api_url: str
    secrets: Literal["masked", "shown"]


@router.get("/integrations", response_model=IntegrationList, summary="Configured alert sources")
async def list_integrations(
    request: Request,
    show_secrets: bool = Query(default=False, description="Show keys in full"),
) -> IntegrationList:
    ctx = get_ctx(request)
    base = str(request.base_url).rstrip("/")
    rows = integration_rows(ctx.policy(), ctx.secrets(), base, show_secrets=show_secrets)
    return IntegrationList(
        integrations=rows, api_url=base, secrets="shown" if show_secrets else "masked"
    )
