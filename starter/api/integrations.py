"""Alert sources: list them (GET), add one for a service (POST), remove an added one (DELETE).

The policy file defines integrations; more can be added at run time, each with its own
key and service, as PagerDuty's integration keys are per service. Added integrations are
kept with their keys in Firewatch's database (``starter.secrets``), which every API
process re-reads when they change; the policy file's cannot be removed here (edit the file).
``firewatch integrations`` (list, add, remove) calls these endpoints.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.policy import Integration, IntegrationKind, Policy, Severity
from starter.api.auth import require_api_token
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    COMMON_RESPONSES,
    ApiError,
    ErrorBody,
    FieldError,
    validation_error,
)
from starter.secrets import (
    AddedIntegrations,
    IntegrationConflict,
    IntegrationNotFound,
    IntegrationSecret,
    IntegrationStoreError,
    Secrets,
    add_integration,
    added_integrations,
    mask,
    remove_integration,
)

PATHS: dict[IntegrationKind, str] = {
    "pagerduty": "/v2/enqueue",
    "alertmanager": "/alerts/alertmanager",
    "grafana": "/alerts/grafana",
    "generic": "/alerts",
}
AUTH: dict[IntegrationKind, str] = {
    "pagerduty": "routing_key in the event body",
    "alertmanager": "Authorization: Bearer <key> (http_config.authorization.credentials)",
    "grafana": (
        "Authorization: Bearer <key>, and/or HMAC signature with hmac_secret"
        " (timestamp header X-Grafana-Alerting-Signature-Timestamp required)"
    ),
    "generic": "Authorization: Bearer <key>",
}


NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


class IntegrationInfo(BaseModel):
    name: str
    kind: IntegrationKind
    service: str = Field(description="The service of every incident this integration opens")
    url: str = Field(description="Where the monitoring tool sends alerts")
    auth: str
    key: str | None = Field(description="Masked unless show_secrets; null if not generated yet")
    hmac_secret: str | None = None
    auto_resolve: bool
    acknowledge_events: bool = Field(
        description="PagerDuty acknowledge events acknowledge the incident (pagerduty only)"
    )
    default_severity: Severity | None = None
    origin: Literal["policy", "added"] = Field(
        description="policy: defined in the policy file; added: added at run time (removable)"
    )
    masked: bool


def _row(
    integration: Integration,
    secret: IntegrationSecret | None,
    base: str,
    origin: Literal["policy", "added"],
    show_secrets: bool,
) -> IntegrationInfo:
    def shown(value: str | None) -> str | None:
        if value is None:
            return None
        return value if show_secrets else mask(value)

    return IntegrationInfo(
        name=integration.name,
        kind=integration.kind,
        service=integration.service,
        url=base + PATHS[integration.kind],
        auth=AUTH[integration.kind],
        key=shown(secret.key if secret else None),
        hmac_secret=shown(secret.hmac_secret if secret else None),
        auto_resolve=integration.auto_resolve,
        acknowledge_events=integration.acknowledge_events,
        default_severity=integration.default_severity,
        origin=origin,
        masked=not show_secrets,
    )


def integration_rows(
    policy: Policy,
    secrets: Secrets | None,
    base_url: str,
    *,
    show_secrets: bool = False,
    added: AddedIntegrations | None = None,
) -> list[IntegrationInfo]:
    """The policy file's integrations, then the added ones (a name the policy file also
    defines is the policy file's, as in ingest)."""
    base = base_url.rstrip("/")
    rows = [
        _row(
            integration,
            secrets.for_integration(integration.name) if secrets else None,
            base,
            "policy",
            show_secrets,
        )
        for integration in policy.integrations
    ]
    names = {integration.name for integration in policy.integrations}
    rows += [
        _row(a.integration, a.secret, base, "added", show_secrets)
        for a in (added.integrations if added else ())
        if a.integration.name not in names
    ]
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


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _added(ctx: ApiContext) -> AddedIntegrations:
    return added_integrations(ctx.data_dir)


@router.get("/integrations", response_model=IntegrationList, summary="Configured alert sources")
async def list_integrations(
    request: Request,
    show_secrets: bool = Query(default=False, description="Show keys in full"),
) -> IntegrationList:
    ctx = get_ctx(request)
    base = _base(request)
    rows = integration_rows(
        ctx.policy(), ctx.secrets(), base, show_secrets=show_secrets, added=_added(ctx)
    )
    return IntegrationList(
        integrations=rows, api_url=base, secrets="shown" if show_secrets else "masked"
    )


class NewIntegration(BaseModel):
    """An alert source for one service, with a key of its own."""

    model_config = ConfigDict(extra="forbid")

    kind: IntegrationKind
    service: str = Field(
        min_length=1, max_length=200, description="The service of the incidents it opens"
    )
    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=64,
        description="Defaults to <kind>-<service>, e.g. pagerduty-database",
    )
    default_severity: Severity | None = None
    auto_resolve: bool = True
    acknowledge_events: bool = Field(
        default=True,
        description="pagerduty only: false answers acknowledge events 202 and ignores them",
    )


def default_name(kind: str, service: str) -> str | None:
    """``<kind>-<service>`` in the characters a name allows, or None if nothing is left."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", service.lower()).strip("-_")
    name = f"{kind}-{slug}"[:64].rstrip("-_") if slug else ""
    return name if re.match(NAME_PATTERN, name) else None


def _new_integration(body: NewIntegration) -> Integration:
    name = body.name or default_name(body.kind, body.service)
    if name is None:
        raise ApiError(
            422,
            "invalid request",
            [
                FieldError(
                    loc="name",
                    msg="no name can be derived from this service: give one",
                    type="missing",
                )
            ],
        )
    fields: dict[str, Any] = body.model_dump(exclude={"name"})
    try:
        return Integration(name=name, **fields)
    except ValidationError as exc:
        raise validation_error(exc) from exc


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The name is taken; `detail` says by what"},
}


@router.post(
    "/integrations",
    status_code=201,
    response_model=IntegrationInfo,
    responses={**BODY_RESPONSES, **_CONFLICT},
    summary="Add an alert source for a service (answers its key, unmasked)",
)
async def create_integration(body: NewIntegration, request: Request) -> IntegrationInfo:
    ctx = get_ctx(request)
    integration = _new_integration(body)
    taken = [i.name for i in ctx.policy().integrations]
    try:
        added = await asyncio.to_thread(add_integration, ctx.data_dir, integration, taken)
    except IntegrationConflict as exc:
        raise ApiError(409, str(exc)) from exc
    except IntegrationStoreError as exc:
        raise ApiError(500, str(exc)) from exc
    return _row(added.integration, added.secret, _base(request), "added", show_secrets=True)


@router.delete(
    "/integrations/{name}",
    response_model=IntegrationInfo,
    responses={
        404: {"model": ErrorBody, "description": "No integration of that name was added"},
        409: {"model": ErrorBody, "description": "Defined in the policy file: edit the file"},
    },
    summary="Remove an added alert source: its key stops working at once",
)
async def delete_integration(
    request: Request, name: str = Path(max_length=64, pattern=NAME_PATTERN)
) -> IntegrationInfo:
    ctx = get_ctx(request)
    if ctx.policy().integration(name) is not None:
        raise ApiError(409, f"integration {name!r} is defined in the policy file; remove it there")
    try:
        removed = await asyncio.to_thread(remove_integration, ctx.data_dir, name)
    except IntegrationNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except IntegrationStoreError as exc:
        raise ApiError(500, str(exc)) from exc
    return _row(removed.integration, removed.secret, _base(request), "added", show_secrets=False)
