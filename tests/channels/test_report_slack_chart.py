"""The monthly report's Slack post against the local Slack Web API: the summary is the
comment of the main chart (incidents by final severity), uploaded through
files.getUploadURLExternal -> the upload URL -> files.completeUploadExternal; once per
month however often the delivery is retried; the text alone when the chart cannot go.

The activity runs in process here (``MonthlyReportActivities.send`` over the seeded
November 2026); the time-skipping run of the workflow is tests/workflows/test_monthly_report.py.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.image import imread
from temporalio.exceptions import ApplicationError

from activities.channels.slack import FENCE, SECTION_LIMIT, sections
from activities.config import PolicyStore
from activities.notify import NotifyActivities
from activities.policy import PolicyActivities
from activities.report_charts import main_chart
from activities.reports import MonthlyReportActivities, SendMonthlyReport, build_monthly
from activities.settings import get_settings
from activities.store import Store
from domain.policy import Policy
from storage.records import IncidentRecords
from tests.channels.conftest import channel_settings
from tests.channels.fake_slack import FakeSlack, Message
from tests.reports.seeded import ALL

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "monthly_report_slack.txt"
DEC_1 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 in New York: November's report
PNG = b"\x89PNG\r\n\x1a\n"


def _activities(fake: FakeSlack, data: Path, policy: Policy) -> MonthlyReportActivities:
    store = Store(data)
    records = IncidentRecords(store.database)
    for record in ALL:
        records.save(record)
    if fake.channel("engineering") is None:
        fake.add_channel("engineering")
    notify = NotifyActivities(store, channel_settings(slack=fake))
    return MonthlyReportActivities(
        store.database, PolicyActivities(PolicyStore(policy=policy)), notify
    )


async def _send(acts: MonthlyReportActivities, at: datetime = DEC_1) -> list[bool]:
    results = await acts.send(SendMonthlyReport(at=at, workflow_id="report/monthly"))
    return [r.delivered for r in results]


def _one_message(fake: FakeSlack) -> Message:
    messages = fake.messages("#engineering")
    assert len(messages) == 1, [(m.text[:40], m.files) for m in messages]
    return messages[0]


def _link() -> str:
    return f"{get_settings().api_url.rstrip('/')}/reports/monthly/2026-11.html"


async def test_the_summary_goes_to_engineering_with_the_main_chart(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    acts = _activities(fake_slack, tmp_path, default_policy)
    assert await _send(acts) == [True, True]

    message = _one_message(fake_slack)
    [upload] = fake_slack.shared_files()
    assert message.files is not None and [f["id"] for f in message.files] == [upload.id]
    assert message.files[0]["title"] == "Incidents by final severity, 2026-11"
    assert (upload.name, upload.shared_to) == ("incidents-by-severity-2026-11.png", message.channel)
    assert upload.data is not None and upload.data.startswith(PNG)
    assert upload.length == len(upload.data)
    # The bytes are the chart drawn from the same records: volume by final severity.
    report = build_monthly(Store(tmp_path).database, "2026-11", default_policy, DEC_1)
    assert upload.data == main_chart(report)
    pixels = imread(io.BytesIO(upload.data), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300
    # Slack's upload flow, each step once; no chat.postMessage beside it.
    for step in ("files.getUploadURLExternal", "upload_url", "files.completeUploadExternal"):
        assert len(fake_slack.calls_to(step, ok_only=True)) == 1, step
    [url_call] = fake_slack.calls_to("files.getUploadURLExternal")
    assert url_call.request.params["length"] == str(len(upload.data))
    [upload_call] = fake_slack.calls_to("upload_url")
    assert upload_call.request.header("Authorization") is None
    [complete] = fake_slack.calls_to("files.completeUploadExternal")
    assert complete.request.params["channel_id"] == message.channel
    assert fake_slack.calls_to("chat.postMessage") == []
    # What #engineering reads: the summary as the chart's comment, with the link to all
    # the charts (golden; the API's address stands as <API>).
    text = message.text.replace(get_settings().api_url.rstrip("/"), "<API>")
    if os.environ.get("FIREWATCH_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == GOLDEN.read_text(encoding="utf-8")
    assert message.text.endswith(f"Charts: {_link()}")


async def test_a_retried_delivery_uploads_and_posts_nothing_twice(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    acts = _activities(fake_slack, tmp_path, default_policy)
    assert await _send(acts) == [True, True]
    assert await _send(acts) == [False, False]  # the retry, or the schedule's catch-up
    _one_message(fake_slack)
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1
    assert len(fake_slack.calls_to("files.completeUploadExternal")) == 1
    assert len(fake_slack.shared_files()) == 1


@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("files.getUploadURLExternal", "missing_scope"),  # the app has no files:write
        ("upload_url", 500),  # the bytes did not arrive
        ("files.completeUploadExternal", "invalid_arguments"),
    ],
)
async def test_when_the_chart_cannot_go_the_text_still_does(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy, method: str, fault: str | int
) -> None:
    if isinstance(fault, int):
        fake_slack.server_error(method, fault)
    else:
        fake_slack.error(method, fault)
    acts = _activities(fake_slack, tmp_path, default_policy)
    assert await _send(acts) == [True, True]
    message = _one_message(fake_slack)
    assert message.files is None and fake_slack.shared_files() == []
    # The same text as with the chart (golden), in sections of up to 3000 characters cut
    # at a line end, the code block closed at the cut and opened again after it.
    parts = [b["text"]["text"] for b in message.blocks or [] if b["type"] == "section"]
    assert len(parts) == 2
    assert all(len(p) <= SECTION_LIMIT and p.count(FENCE) == 2 for p in parts)
    assert parts[0].endswith(f"\n{FENCE}") and parts[1].startswith(f"{FENCE}\n")
    body = "\n".join(parts).replace(f"\n{FENCE}\n{FENCE}\n", "\n")
    shown = body.replace(get_settings().api_url.rstrip("/"), "<API>")
    assert shown + "\n" == GOLDEN.read_text(encoding="utf-8")
    assert message.text == "Firewatch monthly report 2026-11: 38 incidents"
    # ... once: a retry neither tries the chart again nor posts again.
    assert await _send(acts) == [False, False]
    _one_message(fake_slack)
    assert len(fake_slack.calls_to(method)) == 1


async def test_an_unknown_share_is_looked_for_before_anything_is_posted(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    """Slack shared the chart but answered 500: the retry finds the file in the channel."""
    fake_slack.server_error("files.completeUploadExternal", after_effect=True)
    acts = _activities(fake_slack, tmp_path, default_policy)
    with pytest.raises(ApplicationError, match=r"completeUploadExternal: HTTP 500"):
        await _send(acts)
    assert len(fake_slack.shared_files()) == 1
    assert await _send(acts) == [True, False]  # found at Slack; the email had gone
    message = _one_message(fake_slack)
    assert message.files is not None
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1
    assert fake_slack.calls_to("chat.postMessage") == []
    assert await _send(acts) == [False, False]
    _one_message(fake_slack)


async def test_an_unknown_share_that_did_not_happen_gives_the_text_once(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    fake_slack.server_error("files.completeUploadExternal")
    acts = _activities(fake_slack, tmp_path, default_policy)
    with pytest.raises(ApplicationError):
        await _send(acts)
    assert fake_slack.messages("#engineering") == []
    assert await _send(acts) == [True, False]  # not found: the text, without a second upload
    message = _one_message(fake_slack)
    assert message.files is None
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1
    assert len(fake_slack.posts()) == 1


async def test_a_month_without_incidents_posts_the_text_alone(
    fake_slack: FakeSlack, tmp_path: Path, default_policy: Policy
) -> None:
    acts = _activities(fake_slack, tmp_path, default_policy)
    assert await _send(acts, datetime(2026, 3, 1, 14, 0, tzinfo=UTC)) == [True, True]
    message = _one_message(fake_slack)
    assert message.files is None and fake_slack.calls_to("files.getUploadURLExternal") == []
    assert "No incidents were opened in this period." in str(message.blocks)


def test_sections_cut_at_line_ends() -> None:
    lines = [f"{n:02d} " + "x" * 996 for n in range(10)]
    body = "\n".join(lines)
    parts = sections(body)
    assert [len(p) for p in parts] == [1999, 1999, 1999, 1999, 1999]
    assert "\n".join(parts) == body
    assert sections("short") == ["short"]


def test_a_line_longer_than_a_section_is_cut_where_it_must() -> None:
    body = "y" * 7000
    parts = sections(body)
    assert all(len(p) <= SECTION_LIMIT for p in parts) and "".join(parts) == body


@given(
    st.lists(
        st.one_of(st.just(FENCE), st.text(alphabet="ab c-|", max_size=120)),
        max_size=200,
    ),
    st.integers(min_value=40, max_value=400),
)
def test_every_section_renders_alone(lines: list[str], limit: int) -> None:
    """Whatever the cuts: each section fits, and its code blocks are closed in it."""
    if sum(line == FENCE for line in lines) % 2:
        lines.append(FENCE)
    parts = sections("\n".join(lines), limit)
    assert all(len(p) <= limit for p in parts)
    assert all(p.count(FENCE) % 2 == 0 for p in parts), parts
