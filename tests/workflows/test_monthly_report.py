"""The monthly report on the first of the month (time-skipping, real worker): last month's
report to #engineering with a link to its charts, the page by email, once per month."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.common import WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment

from activities.reports import previous_month
from activities.store import Store
from storage.records import IncidentRecords
from tests.reports.seeded import ALL
from workflows.monthly_report import MonthlyReportWorkflow

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("at", "month"),
    [
        (datetime(2026, 12, 1, 14, 0, tzinfo=UTC), "2026-11"),  # 09:00 on Dec 1 in New York
        (datetime(2026, 12, 1, 3, 0, tzinfo=UTC), "2026-10"),  # still Nov 30 in New York
        (datetime(2027, 1, 1, 14, 0, tzinfo=UTC), "2026-12"),
    ],
)
def test_the_report_is_of_the_month_before_in_the_teams_zone(at: datetime, month: str) -> None:
    assert previous_month(at, "America/New_York") == month


async def test_the_first_of_the_month_sends_last_months_report_once(
    ts_env: WorkflowEnvironment, tmp_path: Path, queue: str
) -> None:
    records = IncidentRecords(Store(tmp_path).database)
    for record in ALL:
        records.save(record)
    now = await ts_env.get_current_time()
    first = datetime(2026, 12, 1, 9, 0, tzinfo=NY)
    if now >= first:
        pytest.fail("the seeded month is November 2026: move it forward with this test")
    await ts_env.sleep(first - now)
    # The schedule firing twice (a catch-up) sends nothing more. No time skipping while
    # they run: other tests' timers on this server must not move the clock to another month.
    with ts_env.auto_time_skipping_disabled():
        for _ in range(2):
            await ts_env.client.execute_workflow(
                MonthlyReportWorkflow.run,
                id=f"report/monthly-{uuid.uuid4().hex[:6]}",
                task_queue=queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
    sent = [n for n in Store(tmp_path).notifications(limit=1000) if n.kind == "monthly_report"]
    assert sorted(n.recipient for n in sent) == [
        "#engineering",
        "engineering-alerts@company.com",
    ], [(n.idempotency_key, n.scheduled_at) for n in sent]
    for note in sent:
        assert note.subject == "Firewatch monthly report 2026-11: 38 incidents"
        assert note.text.startswith("Firewatch report 2026-11: incidents opened 2026-11-01 00:00")
        assert "Incidents: 38 (4 still open at the end, 2 false positives" in note.text
        assert note.text.endswith("/reports/monthly/2026-11.html")
