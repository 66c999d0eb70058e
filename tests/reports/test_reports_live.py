"""``GET /reports/...`` and ``firewatch report`` against a real API over a real database
holding the seeded November 2026 (tests/reports/seeded.py) and two post-mortems.

Only figures that do not depend on today's date are checked here (the API reports as of
now when the period has not ended); the rest is tests/reports/test_report_seeded_month.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import postmortem as pm
from domain.policy import Policy
from domain.postmortem import AddActionItem, CloseActionItem, PostmortemProgress
from domain.report_text import duration
from starter.secrets import load_secrets, page_token
from storage.postmortems import Postmortems, Snapshot
from storage.records import IncidentRecords
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api
from tests.browser import chromium
from tests.reports.seeded import ALL
from tests.reports.test_report_html import month_rows


def _snapshot(incident: str, progress: PostmortemProgress, resolved: datetime) -> Snapshot:
    return Snapshot(
        incident_id=incident,
        workflow_id=f"postmortem/{incident}",
        version=1,
        severity="P0",
        service="checkout",
        summary="checkout down",
        resolved_at=resolved,
        timezone="America/New_York",
        progress=progress,
        at=resolved + timedelta(days=2),
    )


def _seed(data: Path, policy: Policy) -> None:
    database = Store(data).database
    records = IncidentRecords(database)
    for record in ALL:
        assert records.save(record)
    rows = Postmortems(database)
    # A1's post-mortem: complete, its one item due Nov 20 closed on the 19th (on time).
    a1 = datetime(2026, 11, 3, 16, 0, tzinfo=UTC)
    done = PostmortemProgress(review_at=a1 + timedelta(days=1))
    at = a1 + timedelta(days=1)
    due = date(2026, 11, 20)
    add = AddActionItem(by="erin", title="Alert on 5xx", owner="bob", due=due, kind="training")
    pm.add_item(done, add, policy, at)
    pm.close_item(done, CloseActionItem(by="bob", number=1, evidence="PR 12"), at + timedelta(15))
    pm.complete(done, "erin", at + timedelta(days=16))
    assert rows.save(_snapshot("A1", done, a1))
    # A2's: not complete, no items.
    a2 = datetime(2026, 11, 10, 6, 30, tzinfo=UTC)
    assert rows.save(_snapshot("A2", PostmortemProgress(review_at=a2 + timedelta(days=1)), a2))


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiStack]:
    data = tmp_path_factory.mktemp("report-data")
    policy = api_policy(default_policy)
    # No worker: reports read Firewatch's database only.
    async with running_api(dev_env, policy, data, "report", with_worker=False) as env:
        _seed(data, policy)
        yield env.stack


@pytest.fixture
def firewatch(stack: ApiStack, tmp_path: Path) -> Iterator[CliRun]:
    yield cli_against(stack, tmp_path, user="erin")


def _get(stack: ApiStack, path: str) -> httpx.Response:
    return httpx.get(f"{stack.url}{path}", headers=stack.api_headers(), timeout=10)


def test_the_monthly_report_as_json(stack: ApiStack) -> None:
    answer = _get(stack, "/reports/monthly/2026-11")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    overall = body["overall"]
    assert (overall["incidents"], overall["open_at_end"], overall["false_positives"]) == (38, 4, 2)
    assert (overall["mttr_minutes"], overall["resolved"]) == (727.03, 32)
    assert body["by_severity"]["P0"]["mttr_minutes"] == 150.0
    assert body["severity_basis"] == "final"
    assert body["follow_through"] == {
        "postmortems": 2,
        "postmortems_complete": 1,
        "postmortem_completion_rate": 0.5,
        "items_due": 1,
        "items_closed_on_time": 1,
        "items_closed_late": 0,
        "items_open": 0,
        "items_on_time_rate": 1.0,
    }


def test_the_quarterly_report_as_json(stack: ApiStack) -> None:
    answer = _get(stack, "/reports/quarterly/2026Q4")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["overall"]["incidents"] == 40
    assert [(m["month"], m["incidents"]) for m in body["months"]] == [
        ("2026-10", 1),
        ("2026-11", 38),
        ("2026-12", 1),
    ]


def test_an_empty_month(stack: ApiStack) -> None:
    body = _get(stack, "/reports/monthly/2026-02").json()
    assert body["no_incidents"] is True and body["overall"]["mttr_minutes"] is None


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/reports/monthly/2026-13", "path.month"),
        ("/reports/monthly/november", "path.month"),
        ("/reports/quarterly/2026Q5", "path.quarter"),
    ],
)
def test_bad_periods_are_422(stack: ApiStack, path: str, field: str) -> None:
    answer = _get(stack, path)
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["errors"]] == [field]


def test_the_monthly_page(stack: ApiStack) -> None:
    answer = _get(stack, "/reports/monthly/2026-11.html")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "Incidents: 38 (4 open at the end" in answer.text
    assert answer.text.count('src="data:image/png;base64,') == 5
    bad = _get(stack, "/reports/monthly/2026-13.html")
    assert bad.status_code == 422
    assert httpx.get(f"{stack.url}/reports/monthly/2026-11.html", timeout=10).status_code == 401


def test_a_page_opens_from_its_link_without_the_api_token(stack: ApiStack) -> None:
    """The monthly report's Charts link is opened in a browser, which sends no Bearer
    token: the link's token opens that page, and no other."""
    secrets = load_secrets(stack.data)
    page = "/reports/monthly/2026-11.html"
    token = page_token(secrets, page)
    opened = httpx.get(f"{stack.url}{page}?token={token}", timeout=10)
    assert opened.status_code == 200 and "Incidents: 38" in opened.text
    other = httpx.get(f"{stack.url}/reports/monthly/2026-10.html?token={token}", timeout=10)
    assert other.status_code == 403
    wrong = ("1" if token[0] == "0" else "0") + token[1:]
    assert httpx.get(f"{stack.url}{page}?token={wrong}", timeout=10).status_code == 403
    # The API itself still wants the API token: there a token is no parameter at all.
    json_report = httpx.get(f"{stack.url}/reports/monthly/2026-11?token={token}", timeout=10)
    assert json_report.status_code == 422
    assert [e["loc"] for e in json_report.json()["errors"]] == ["query.token"]


def test_the_quarterly_page(stack: ApiStack) -> None:
    """The quarter's page: its figures and its month-by-month trend are the JSON's."""
    data = _get(stack, "/reports/quarterly/2026Q4").json()
    answer = _get(stack, "/reports/quarterly/2026q4.html")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "<title>Firewatch report 2026Q4</title>" in page
    overall = data["overall"]
    assert f"Incidents: {overall['incidents']} ({overall['open_at_end']} open at the end" in page
    assert [row[:2] for row in month_rows(page)[1:]] == [
        [m["month"], str(m["incidents"])] for m in data["months"]
    ]
    assert [row[4] for row in month_rows(page)[1:]] == [
        duration(m["mttr_minutes"]) for m in data["months"]
    ]
    assert page.count('src="data:image/png;base64,') == 6  # five charts and the trend
    bad = _get(stack, "/reports/quarterly/2026Q5.html")
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["errors"]] == ["path.quarter"]
    assert httpx.get(f"{stack.url}/reports/quarterly/2026Q4.html", timeout=10).status_code == 401


def test_reports_need_the_token(stack: ApiStack) -> None:
    assert httpx.get(f"{stack.url}/reports/monthly/2026-11", timeout=10).status_code == 401


def test_the_cli_text_and_json(firewatch: CliRun) -> None:
    shown = firewatch("report", "--month", "2026-11")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("Firewatch report 2026-11: incidents opened 2026-11-01 00:00")
    # Until November 2026 is over (New York time) the report is of the month so far.
    over = datetime.now(UTC) >= datetime(2026, 12, 1, 5, tzinfo=UTC)
    when = "at the end" if over else "now"
    assert f"Incidents: 38 (4 still open {when}, 2 false positives: 5.3%)" in shown.stdout
    assert "Post-mortems complete: 1 of 2 (50.0%)" in shown.stdout
    as_json = json.loads(firewatch("report", "--month", "2026-11", "--json").stdout)
    assert as_json["overall"]["incidents"] == 38
    quarter = firewatch("report", "--quarter", "2026q4")
    assert quarter.exit_code == 0, quarter.output
    assert "Month by month" in quarter.stdout and "2026-12" in quarter.stdout


def test_report_without_a_period_is_this_month_so_far(firewatch: CliRun) -> None:
    result = firewatch("report")
    assert result.exit_code == 0, result.output
    this_month = f"{datetime.now(ZoneInfo('America/New_York')):%Y-%m}"
    assert result.stdout.startswith(f"Firewatch report {this_month}: incidents opened ")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--month", "2026-13"), "month must look like 2026-11"),
        (("--quarter", "2026Q5"), "quarter must look like 2026Q4"),
        (("--month", "2026-11", "--quarter", "2026Q4"), "one of them"),
    ],
)
def test_the_cli_refuses_bad_periods(firewatch: CliRun, args: tuple[str, ...], says: str) -> None:
    result = firewatch("report", *args)
    assert result.exit_code == 2
    assert says in result.stderr


async def test_the_monthly_page_in_chromium(
    stack: ApiStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Debian's Chromium loads the page from the API: every chart is a decoded image with a
    size, the page's figures are the JSON's, and the screenshot is kept as an artefact."""
    data = _get(stack, "/reports/monthly/2026-11").json()
    async with chromium() as browser:
        context = await browser.new_context(
            extra_http_headers=stack.api_headers(), viewport={"width": 1280, "height": 900}
        )
        page = await context.new_page()
        answer = await page.goto(f"{stack.url}/reports/monthly/2026-11.html")
        assert answer is not None and answer.status == 200
        images = await page.eval_on_selector_all(
            "img",
            "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])",
        )
        assert len(images) == 5
        for alt, complete, width, height in images:
            assert complete and width > 0 and height > 0, alt
        text = await page.inner_text("body")
        overall = data["overall"]
        assert (
            f"Incidents: {overall['incidents']} ({overall['open_at_end']} open at the end" in text
        )
        shot = tmp_path_factory.mktemp("artefacts") / "monthly-report-2026-11.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        await context.close()


async def test_the_quarterly_page_in_chromium(
    stack: ApiStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Chromium loads the quarter's page: six decoded images (the trend and the five
    charts), and the month table reads as the JSON's months."""
    data = _get(stack, "/reports/quarterly/2026Q4").json()
    async with chromium() as browser:
        context = await browser.new_context(
            extra_http_headers=stack.api_headers(), viewport={"width": 1280, "height": 900}
        )
        page = await context.new_page()
        answer = await page.goto(f"{stack.url}/reports/quarterly/2026Q4.html")
        assert answer is not None and answer.status == 200
        images = await page.eval_on_selector_all(
            "img",
            "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])",
        )
        assert images[0][0] == "Trend over the quarter"
        assert len(images) == 6
        for alt, complete, width, height in images:
            assert complete and width > 0 and height > 0, alt
        rows = await page.eval_on_selector_all(
            "#months tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))"
        )
        assert [row[:2] for row in rows[1:]] == [
            [m["month"], str(m["incidents"])] for m in data["months"]
        ]
        shot = tmp_path_factory.mktemp("artefacts") / "quarterly-report-2026Q4.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
        await context.close()
