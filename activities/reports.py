"""The monthly report: built from the incident records (``GET /reports``, the schedule),
and sent on the first of the month to #engineering and the channels' email address."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from temporalio import activity

from activities.models import DeliveryResult, Notification
from activities.notify import NotifyActivities
from activities.policy import PolicyActivities
from activities.settings import get_settings
from domain.policy import Policy
from domain.report import MonthlyReport, month_bounds, monthly_report
from domain.report_text import render_report
from storage.database import Database
from storage.postmortems import follow_through
from storage.records import IncidentRecords

REPORT_KIND = "monthly_report"


def build_monthly(database: Database, month: str, policy: Policy, now: datetime) -> MonthlyReport:
    start, end = month_bounds(month, policy)
    records = IncidentRecords(database).overlapping(start, end)
    numbers = follow_through(database, start, end)
    return monthly_report(records, month, policy, numbers, as_of=min(now, end))


def previous_month(at: datetime, timezone: str) -> str:
    """The month before the one ``at`` falls in, in the team's zone: ``2026-11``."""
    first = at.astimezone(ZoneInfo(timezone)).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


Role = Literal["engineering", "email"]


def _recipients(policy: Policy) -> list[tuple[str, Role]]:
    return [(policy.channels.engineering, "engineering"), (policy.channels.email, "email")]


class SendMonthlyReport(BaseModel):
    at: datetime  # the schedule's (workflow's) time: the report is of the month before
    workflow_id: str


class MonthlyReportActivities:
    def __init__(
        self, database: Database, policies: PolicyActivities, notify: NotifyActivities
    ) -> None:
        self._database = database
        self._policies = policies
        self._notify = notify

    @activity.defn(name="Send monthly report")
    async def send(self, request: SendMonthlyReport) -> list[DeliveryResult]:
        """The summary to #engineering with a link to the charts, the page (charts inline)
        to the channels' email; once each per month (by key), however often it runs."""
        from starter.report_html import render_html  # matplotlib: only here and in the API

        policy = self._policies.load_policy_snapshot()
        month = previous_month(request.at, policy.business_hours.timezone)
        report = await asyncio.to_thread(build_monthly, self._database, month, policy, request.at)
        link = f"{get_settings().api_url.rstrip('/')}/reports/monthly/{month}.html"
        text = f"{render_report(report)}\nCharts: {link}"
        subject = f"Firewatch monthly report {month}: {report.overall.incidents} incidents"
        page = await asyncio.to_thread(render_html, report)
        notes = [
            Notification(
                idempotency_key=f"report:{month}:{recipient}:outbox",
                incident_id=request.workflow_id,
                workflow_id=request.workflow_id,
                kind=REPORT_KIND,
                recipient=recipient,
                subject=subject,
                text=text,
                scheduled_at=request.at,
                channel_role=role,
                html=page if role == "email" else None,
            )
            for recipient, role in _recipients(policy)
        ]
        return list(await asyncio.gather(*(self._notify.deliver_notification(n) for n in notes)))
