"""Webhooks of Prometheus Alertmanager (version "4") and Grafana unified alerting (version "1").

Grafana sends Alertmanager's shape plus a few fields, so both share one model and one
handler. Each alert is its own incident, keyed by integration + fingerprint: a firing
alert opens or joins it, a resolved one resolves it (when the integration allows
auto-resolve). Alertmanager re-sends whole groups and retries on 5xx; a repeat only
joins the open incident, which counts it and pages nobody.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from domain.incident import AlertSource
from domain.policy import Integration
from starter.api.auth import bearer_integration, grafana_integration
from starter.api.context import ApiContext, get_ctx
from starter.api.errors import AUTH_RESPONSES, BODY_RESPONSES, COMMON_RESPONSES
from starter.api.ingest_common import (
    Outcome,
    Timestamp,
    admit_alert,
    all_or_raise,
    build_alert,
    detection_time,
    map_severity,
    resolve_alert,
)

SUMMARY_MAX = 1024
SERVICE_MAX = 200

Labels = dict[str, str]


class _Camel(BaseModel):
    # The wire names are camelCase; Python code reads snake_case. Numbers are strict
    # (no true → 1, no "3" → 3): a wrong type is the sender's bug, and we say so.
    model_config = ConfigDict(populate_by_name=True)


class AlertmanagerAlert(_Camel):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: Timestamp = Field(
        alias="startsAt", description="When the alert started: detection time"
    )
    ends_at: Timestamp | None = Field(
        default=None, alias="endsAt", description="0001-01-01T00:00:00Z while firing"
    )
    generator_url: str = Field(default="", alias="generatorURL", max_length=4096)
    fingerprint: str = Field(
        default="", max_length=255, description="Alertmanager's alert identity"
    )


class AlertmanagerWebhook(_Camel):
    version: Literal["4"]
    group_key: str = Field(alias="groupKey", max_length=4096)
    truncated_alerts: StrictInt = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=1024)
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Labels = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL", max_length=4096)
    alerts: list[AlertmanagerAlert] = Field(max_length=1000)


class GrafanaAlert(AlertmanagerAlert):
    silence_url: str | None = Field(default=None, alias="silenceURL", max_length=4096)
    dashboard_url: str | None = Field(default=None, alias="dashboardURL", max_length=4096)
    panel_url: str | None = Field(default=None, alias="panelURL", max_length=4096)
    image_url: str | None = Field(default=None, alias="imageURL", max_length=4096)
    values: dict[str, StrictFloat | None] | None = None
    value_string: str | None = Field(default=None, alias="valueString", max_length=8192)


class GrafanaWebhook(AlertmanagerWebhook):
    version: Literal["1"]  # type: ignore[assignment]
    org_id: StrictInt | None = Field(default=None, alias="orgId")
    title: str | None = Field(default=None, max_length=8192)
    message: str | None = Field(default=None, max_length=65536)
    state: str | None = Field(default=None, max_length=64, description="alerting, ok, ...")
    alerts: list[GrafanaAlert] = Field(max_length=1000)  # type: ignore[assignment]


class AlertResult(BaseModel):
    dedup_key: str = Field(description="The alert's fingerprint: one incident per key")
    status: Literal["firing", "resolved"]
    outcome: Outcome
    message: str | None = Field(
        default=None, description="Present when the service is in maintenance: why nobody was paged"
    )


class WebhookAccepted(BaseModel):
    status: Literal["success"] = "success"
    alerts: list[AlertResult]


def dedup_key(alert: AlertmanagerAlert) -> str:
    """The fingerprint, or (senders that omit it) a stable hash of the sorted labels."""
    if alert.fingerprint:
        return alert.fingerprint
    canonical = json.dumps(sorted(alert.labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _summary(alert: AlertmanagerAlert, webhook: AlertmanagerWebhook, key: str) -> str:
    text = (
        alert.annotations.get("summary")
        or alert.annotations.get("description")
        or webhook.common_annotations.get("summary")
        or alert.labels.get("alertname")
        or f"Alert {key}"
    ).strip() or f"Alert {key}"
    # Long annotations are the sender's business, not a reason to drop the alert.
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _extras(
    alert: AlertmanagerAlert, webhook: AlertmanagerWebhook
) -> tuple[dict[str, Any], list[str]]:
    details: dict[str, Any] = {"receiver": webhook.receiver, "status": alert.status}
    if webhook.external_url:
        details["external_url"] = webhook.external_url
    if webhook.group_labels:
        details["group_labels"] = webhook.group_labels
    links = [alert.generator_url] if alert.generator_url else []
    if isinstance(alert, GrafanaAlert):
        for name in (
            "silence_url",
            "dashboard_url",
            "panel_url",
            "image_url",
            "values",
            "value_string",
        ):
            value = getattr(alert, name)
            if value is not None:
                details[name] = value
        links += [url for url in (alert.dashboard_url, alert.panel_url) if url]
    if isinstance(webhook, GrafanaWebhook):
        for name in ("org_id", "title", "state"):
            value = getattr(webhook, name)
            if value is not None:
                details[name] = value
    return details, links


async def _one(
    ctx: ApiContext,
    integration: Integration,
    source: AlertSource,
    webhook: AlertmanagerWebhook,
    index: int,
    alert: AlertmanagerAlert,
) -> AlertResult:
    key = dedup_key(alert)
    if alert.status == "resolved":
        outcome = await resolve_alert(ctx, integration, source, key)
        return AlertResult(dedup_key=key, status=alert.status, outcome=outcome)
    details, links = _extras(alert, webhook)
    service = (alert.labels.get("service") or integration.service)[:SERVICE_MAX]
    now = datetime.now(UTC)
    normalised = build_alert(
        ("alerts", str(index)),
        source=source,
        dedup_key=key,
        summary=_summary(alert, webhook, key),
        service=service,
        severity=map_severity(
            ctx.policy(), integration, alert.labels.get("severity"), alert.labels
        ),
        integration=integration.name,
        received_at=now,
        detected_at=detection_time(alert.starts_at, now),
        labels=alert.labels,
        annotations=alert.annotations,
        details=details,
        links=links,
        group_key=webhook.group_key,
        fingerprint=alert.fingerprint or None,
        generator_url=alert.generator_url or None,
    )
    outcome, note = await admit_alert(ctx, normalised)
    return AlertResult(dedup_key=key, status=alert.status, outcome=outcome, message=note)


async def ingest(
    ctx: ApiContext, integration: Integration, source: AlertSource, webhook: AlertmanagerWebhook
) -> WebhookAccepted:
    results = await all_or_raise(
        _one(ctx, integration, source, webhook, i, alert) for i, alert in enumerate(webhook.alerts)
    )
    return WebhookAccepted(alerts=results)


router = APIRouter(
    tags=["ingest"], responses={**AUTH_RESPONSES, **BODY_RESPONSES, **COMMON_RESPONSES}
)


@router.post(
    "/alerts/alertmanager",
    status_code=202,
    response_model=WebhookAccepted,
    response_model_exclude_none=True,
    summary="Prometheus Alertmanager webhook (version 4)",
    description=(
        "Point a webhook receiver here with `send_resolved: true` and"
        " `http_config.authorization.credentials` set to the integration's token."
    ),
)
async def alertmanager(
    webhook: AlertmanagerWebhook,
    request: Request,
    integration: Integration = bearer_integration("alertmanager"),
) -> WebhookAccepted:
    return await ingest(get_ctx(request), integration, "alertmanager", webhook)


@router.post(
    "/alerts/grafana",
    status_code=202,
    response_model=WebhookAccepted,
    response_model_exclude_none=True,
    summary="Grafana unified alerting webhook (version 1)",
    description=(
        "Authenticate with the integration's token as the Authorization header"
        " (scheme Bearer), or with the HMAC signature (header X-Grafana-Alerting-Signature)"
        " over a timestamp (header X-Grafana-Alerting-Signature-Timestamp, Unix seconds,"
        " at most 5 minutes off), or both. A signature without a fresh timestamp is 401."
    ),
)
async def grafana(
    webhook: GrafanaWebhook,
    request: Request,
    integration: Integration = Depends(grafana_integration),
) -> WebhookAccepted:
    return await ingest(get_ctx(request), integration, "grafana", webhook)
