"""The monthly report: built from the incident records (``GET /reports``, the schedule),
and sent on the first of the month to #engineering (the summary with the main chart) and
the channels' email address (the HTML page)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from temporalio import activity

from activities.channels.attachments import Chart, NotificationWithChart
from activities.models import DeliveryResult
from activities.notify import NotifyActivities
from activities.policy import PolicyActivities
from activities.settings import get_settings
from domain.policy import Policy
from domain.report import MonthlyReport, month_bounds, monthly_report
from domain.report_text import counted, render_report
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


def slack_summary(shown: str, link: str) -> str:
    """The report as #engineering reads it: its title and note as text, the figures as a
    code block (the tables line up in Slack's fixed-width font), the link to all charts."""
    head, _, figures = shown.partition("\n\n")
    return f"{head}\n```\n{figures.strip()}\n```\nCharts: {link}"


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

    def _link(self, path: str) -> str:
        """The page's address with its link token: people open it in a browser, which
        sends no API token (without secrets yet, the bare address)."""
        from starter.secrets import load_secrets, page_token

        settings = get_settings()
        # The address people reach Firewatch on (FIREWATCH_PUBLIC_URL), else the API's.
        url = f"{(settings.public_url or settings.api_url).rstrip('/')}{path}"
        try:
            token = page_token(load_secrets(settings.data_dir, database=self._database), path)
        except (FileNotFoundError, ValueError):
            return url
        return f"{url}?token={token}"

    @activity.defn(name="Send monthly report")
    async def send(self, request: SendMonthlyReport) -> list[DeliveryResult]:
        """The summary to #engineering with the main chart (on Slack: uploaded with the
        summary as its comment; without it if the upload fails) and a link to all the
        charts, the page (charts inline) to the channels' email; once each per month (by
        key), however often it runs."""
        from activities.report_charts import MAIN_CHART, main_chart  # matplotlib: only here
        from starter.report_html import render_html

        policy = self._policies.load_policy_snapshot()
        month = previous_month(request.at, policy.business_hours.timezone)
        report = await asyncio.to_thread(build_monthly, self._database, month, policy, request.at)
        link = await asyncio.to_thread(self._link, f"/reports/monthly/{month}.html")
        shown = render_report(report)
        text = f"{shown}\nCharts: {link}"
        subject = (
            f"Firewatch monthly report {month}: {counted(report.overall.incidents, 'incident')}"
        )
        page = await asyncio.to_thread(render_html, report)
        png = await asyncio.to_thread(main_chart, report)
        chart = (
            None
            if png is None
            else Chart(
                filename=f"incidents-by-severity-{month}.png",
                title=f"{MAIN_CHART}, {month}",
                png=png,
            )
        )
        notes = [
            NotificationWithChart(
                idempotency_key=f"report:{month}:{recipient}:outbox",
                incident_id=request.workflow_id,
                workflow_id=request.workflow_id,
                kind=REPORT_KIND,
                recipient=recipient,
                subject=subject,
                text=slack_summary(shown, link) if role == "engineering" else text,
                scheduled_at=request.at,
                channel_role=role,
                html=page if role == "email" else None,
                chart=chart if role == "engineering" else None,
            )
            for recipient, role in _recipients(policy)
        ]
        return list(await asyncio.gather(*(self._notify.deliver_notification(n) for n in notes)))
