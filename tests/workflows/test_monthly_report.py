"""The monthly report on the first of the month (time-skipping, real worker): last month's
report to #engineering (with its main chart, on Slack) and a link to its charts, the page
by email, once per month."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.common import WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.config import PolicyStore
from activities.reports import previous_month
from activities.store import Store
from domain.policy import Policy
from starter.secrets import ensure_secrets, page_token
from storage.records import IncidentRecords
from tests.channels.conftest import channel_settings
from tests.channels.fake_slack import FakeSlack, Message
from tests.reports.seeded import ALL, moved, years_ahead
from tests.workflows.report_driver import Firings, MonthlyScheduleStandIn
from worker import build_worker
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
    ts_env: WorkflowEnvironment, tmp_path: Path, queue: str, default_policy: Policy
) -> None:
    secrets = ensure_secrets(tmp_path, default_policy)  # as `make up` makes them
    now = await ts_env.get_current_time()
    years = years_ahead(now, datetime(2026, 12, 1, 9, 0, tzinfo=NY))
    month = f"{2026 + years}-11"
    records = IncidentRecords(Store(tmp_path).database)
    for record in moved(ALL, years):
        records.save(record)
    first = datetime(2026 + years, 12, 1, 9, 0, tzinfo=NY)
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
        assert note.subject == f"Firewatch monthly report {month}: 38 incidents"
        assert note.text.startswith(f"Firewatch report {month}: incidents opened {month}-01 00:00")
        assert "Incidents: 38 (4 still open at the end, 2 false positives" in note.text
        # The link opens in a browser: it carries that page's own token.
        page = f"/reports/monthly/{month}.html"
        assert note.text.endswith(f"{page}?token={page_token(secrets, page)}")


def _body(message: Message) -> str:
    """What the channel reads: a file's comment, or a post's sections."""
    if message.files:
        return message.text
    return "".join(b["text"]["text"] for b in message.blocks or [] if b["type"] == "section")


def _first_at(year: int, month: int, at: time, zone: ZoneInfo) -> datetime:
    return datetime(year, month, 1, at.hour, at.minute, tzinfo=zone).astimezone(UTC)


async def test_across_month_boundaries_each_month_posts_once(
    ts_env: WorkflowEnvironment,
    tmp_path: Path,
    default_policy: Policy,
    executor: ThreadPoolExecutor,
) -> None:
    """The Schedule's firings, driven in time-skipping: Dec 1, a repeat the same morning (a
    catch-up), Jan 1 and Feb 1, each at ``reports.at`` in the policy's zone. #engineering
    (the local Slack) gets one post per month: November's and December's with the main
    chart, January's (no incidents) as text; the repeat posts nothing new."""
    zone = ZoneInfo(default_policy.business_hours.timezone)
    at = default_policy.reports.at
    now = await ts_env.get_current_time()
    years = years_ahead(now, _first_at(2026, 12, at, zone))
    year = 2026 + years
    records = IncidentRecords(Store(tmp_path).database)
    for record in moved(ALL, years):
        records.save(record)
    firings = [
        _first_at(year, 12, at, zone),
        _first_at(year, 12, at, zone) + timedelta(minutes=30),
        _first_at(year + 1, 1, at, zone),
        _first_at(year + 1, 2, at, zone),
    ]
    # Close to the first firing before any workflow runs (the stand-in's timers are short).
    await ts_env.sleep(firings[0] - timedelta(hours=1) - now)
    queue, driver_queue = f"fw-test-{uuid.uuid4().hex[:8]}", f"driver-{uuid.uuid4().hex[:8]}"
    with FakeSlack() as fake:
        assert isinstance(fake, FakeSlack)
        fake.add_channel("engineering")
        worker = build_worker(
            ts_env.client,
            policy=PolicyStore(policy=default_policy),
            data=tmp_path,
            task_queue=queue,
            executor=executor,
            channels=channel_settings(slack=fake),
        )
        driver = Worker(ts_env.client, task_queue=driver_queue, workflows=[MonthlyScheduleStandIn])
        async with worker, driver:
            results = await ts_env.client.execute_workflow(
                MonthlyScheduleStandIn.run,
                Firings(at=firings, task_queue=queue),
                id=f"monthly-stand-in-{uuid.uuid4().hex[:6]}",
                task_queue=driver_queue,
            )
            now = await ts_env.get_current_time()
        messages = fake.messages("#engineering")
        shared = fake.shared_files()

    assert now >= firings[-1]
    assert [[r.delivered for r in run] for run in results] == [
        [True, True],
        [False, False],  # the repeat: already sent, both
        [True, True],
        [True, True],
    ]
    assert [_body(m).split(":")[0] for m in messages] == [
        f"Firewatch report {year}-11",
        f"Firewatch report {year}-12",
        f"Firewatch report {year + 1}-01",
    ]
    assert [len(m.files or []) for m in messages] == [1, 1, 0]
    assert [f.name for f in shared] == [
        f"incidents-by-severity-{year}-11.png",
        f"incidents-by-severity-{year}-12.png",
    ]
    assert len(fake.calls_to("files.completeUploadExternal")) == 2
    assert len(fake.posts()) == 1  # January's text
    # Each month's post and email went out on its own 1st (the workflow's time, to the
    # minute: the child starts a few milliseconds after the timer).
    sent = [n for n in Store(tmp_path).notifications(limit=1000) if n.kind == "monthly_report"]
    minutes = [(n.scheduled_at.replace(second=0, microsecond=0), n.recipient) for n in sent]
    assert sorted(minutes) == sorted(
        (when, who)
        for when in (firings[0], firings[2], firings[3])
        for who in ("#engineering", "engineering-alerts@company.com")
    )
