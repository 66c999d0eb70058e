"""What every ingest endpoint shares: timestamps, severity mapping, and handing alerts to Temporal.

Handlers return only after ``attach``, ``resolve_from_source`` or ``acknowledge_from_source``
came back, i.e. after Temporal durably recorded the start or signal. All are idempotent per
incident (the workflow only counts a repeated alert, and acknowledges or resolves once), so
a sender's retry never pages twice.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BeforeValidator, ValidationError

from domain.ids import readable_dedup_key
from domain.incident import Alert, AlertAcknowledgeRequest, AlertResolveRequest, AlertSource
from domain.maintenance import ingest_note
from domain.policy import Integration, Policy, Severity, SeverityMapping
from starter.api.context import ApiContext
from starter.api.errors import validation_error
from starter.api.handoffs import integration_seen
from starter.incidents import acknowledge_from_source, attach, resolve_from_source

T = TypeVar("T")

Outcome = Literal["opened", "joined", "resolved", "ignored"]
AckOutcome = Literal["acknowledged", "ignored"]
_O = TypeVar("_O", Outcome, AckOutcome)

_NUMERIC = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def _iso_timestamp(value: Any) -> Any:
    """ISO 8601 strings only: a bare number is ambiguous (seconds? ms?), so refuse it.

    PagerDuty's own examples write offsets as +0000; accept that spelling too.
    """
    if not isinstance(value, str):
        raise ValueError("timestamp must be an ISO 8601 string, e.g. 2026-01-31T12:00:00Z")
    if _NUMERIC.match(value):
        raise ValueError("timestamp must be ISO 8601 with a UTC offset, not a number")
    return _COMPACT_OFFSET.sub(r"\1:\2", value.strip())


# An ISO 8601 timestamp with a UTC offset (Z or ±hh:mm).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_timestamp)]

# How far a sender's clock may be off before its detection time is not believed.
DETECTION_MAX_AGE = timedelta(days=365)
DETECTION_MAX_AHEAD = timedelta(minutes=5)


def detection_time(value: datetime | None, received: datetime) -> datetime | None:
    """The sender's detection time (MTTD), unless it is implausible (a skewed clock).

    Dropping it beats dropping the alert: Alertmanager does not retry a 4xx.
    """
    if value is None:
        return None
    if not received - DETECTION_MAX_AGE <= value <= received + DETECTION_MAX_AHEAD:
        return None
    return value


def severity_mapping(policy: Policy, integration: Integration) -> SeverityMapping:
    mapping = integration.severity_mapping or policy.severity_mapping
    if integration.default_severity is not None:
        mapping = mapping.model_copy(update={"default": integration.default_severity})
    return mapping


def map_severity(
    policy: Policy, integration: Integration, alert_severity: str | None, fields: dict[str, Any]
) -> Severity:
    scalars = {k: str(v) for k, v in fields.items() if isinstance(v, str | int | float)}
    return severity_mapping(policy, integration).map(alert_severity, scalars)


def new_dedup_key(service: str, summary: str, at: datetime) -> str:
    """The key of an alert sent without one: an incident of its own, whose workflow id names
    it in the Temporal UI (``incident/direct/api-2026-11-28T0915Z-api-p99-5s-3f9c2a17``)."""
    return readable_dedup_key(service, summary, nonce=secrets.token_hex(4), at=at)


def build_alert(prefix: tuple[str, ...] = (), **fields: Any) -> Alert:
    """An Alert, or a 422 naming the field when the sender's values do not fit one."""
    try:
        return Alert(**fields)
    except ValidationError as exc:
        raise validation_error(exc, prefix) from exc


async def open_alert(ctx: ApiContext, alert: Alert) -> Outcome:
    return (await admit_alert(ctx, alert))[0]


async def admit_alert(ctx: ApiContext, alert: Alert) -> tuple[Outcome, str | None]:
    """Open or join; and when the service is in maintenance, the incident it opens pages
    nobody until the window is over, and the note says so (for the ingest answer)."""
    from starter.api.maintenance import active_window  # it imports this module

    window = await active_window(ctx, alert.service)
    await integration_seen(ctx, alert.integration)  # the handoff's "Monitoring health"
    client = await ctx.client()
    opened = await attach(
        client,
        alert,
        ctx.open_incidents,
        task_queue=ctx.settings.task_queue,
        hold=window.hold() if window is not None else None,
    )
    outcome: Outcome = "opened" if opened else "joined"
    if opened:
        ctx.metrics.incidents_opened.labels(source=alert.source).inc()
    ctx.metrics.alert(_metric_source(alert.source), outcome)
    note = ingest_note(window, datetime.now(UTC), opened=opened) if window else None
    return outcome, note


async def resolve_alert(
    ctx: ApiContext, integration: Integration, source: AlertSource, dedup_key: str
) -> Outcome:
    """Auto-resolve the open incident for the key, when the integration allows it."""
    await integration_seen(ctx, integration.name)
    request = AlertResolveRequest(source=source, dedup_key=dedup_key, integration=integration.name)
    done = integration.auto_resolve and await resolve_from_source(await ctx.client(), request)
    return _count(ctx, source, "resolved" if done else "ignored")


async def acknowledge_alert(
    ctx: ApiContext, integration: Integration, source: AlertSource, dedup_key: str
) -> AckOutcome:
    """Acknowledge the open incident for the key in the integration's name, unless the
    integration ignores acknowledgements (``acknowledge_events: false``)."""
    request = AlertAcknowledgeRequest(
        source=source, dedup_key=dedup_key, integration=integration.name
    )
    done = integration.acknowledge_events and await acknowledge_from_source(
        await ctx.client(), request
    )
    return _count(ctx, source, "acknowledged" if done else "ignored")


def _count(ctx: ApiContext, source: AlertSource, outcome: _O) -> _O:
    """Counted per source and outcome. "ignored": the integration does not act on such
    events, or nothing is open for the key (never opened, or resolved already)."""
    ctx.metrics.alert(_metric_source(source), outcome)
    return outcome


def _metric_source(source: AlertSource) -> str:
    return "generic" if source == "api" else source


async def all_or_raise(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run every call to the end, then raise the first failure.

    Alerts that did get through stay recorded; the sender's retry re-sends them and they
    only join their incidents again.
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if not isinstance(r, BaseException)]
