"""Golden text: the post-mortem document with its meeting notes and action items.

Rendered from fixed data (a P1 resolved 42 minutes in, a review rescheduled once and held,
three action items: one verified, one closed awaiting verification, one overdue) and
compared with ``tests/golden/postmortem_document.md``, word for word. Regenerate after a
deliberate change, then read the diff::

    FIREWATCH_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/domain/test_postmortem_document.py
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from domain import postmortem as pm
from domain.incident import Status, TicketFields, TimelineEntry
from domain.policy import BusinessHours
from domain.postmortem import (
    AddActionItem,
    CloseActionItem,
    PostmortemProgress,
    RecordMeeting,
    RescheduleReview,
    VerifyActionItem,
)
from domain.postmortem_texts import postmortem_ticket_fields, render_postmortem_document
from tests.domain.support import T0, incident, m, policy

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "postmortem_document.md"
REGENERATE = os.environ.get("FIREWATCH_REGEN_GOLDEN") == "1"


def test_the_postmortem_document_word_for_word() -> None:
    resolved = T0 + m(42)
    state = incident(
        "P1",
        status=Status.RESOLVED,
        acknowledged_by="carol",
        acknowledged_at=T0 + m(2),
        assignee="carol",
        responders=["carol", "dave"],
        resolved_at=resolved,
        resolved_by="carol",
        root_cause="Connection pool exhausted after deploy 4812",
        fix="Rolled back deploy 4812 and raised the pool size to 200",
        timeline=[
            TimelineEntry(at=T0, kind="opened", text="Alert triggered"),
            TimelineEntry(at=T0 + m(2), kind="ack", text="Acknowledged", by="carol"),
            TimelineEntry(at=resolved, kind="resolve", text="Resolved", by="carol"),
        ],
    )
    progress = PostmortemProgress(review_at=T0 + timedelta(hours=29), document_path="pm.md")
    at = T0 + timedelta(hours=2)
    pm.reschedule(progress, RescheduleReview(by="erin", review_at=T0 + timedelta(hours=30)))
    held = T0 + timedelta(hours=30, minutes=50)
    pm.record_meeting(
        progress,
        RecordMeeting(
            by="erin",
            timeline_review="Alert at 09:00, acknowledged in 2 minutes, resolved at 09:42",
            root_cause_analysis="Pool sized for last year's traffic; deploy 4812 doubled it",
            action_item_assignment="Dave: alerting; Carol: runbook; Bob: load test",
            process_improvements="Capacity review each quarter",
            what_went_well="Fast acknowledgement and a clean rollback",
            areas_for_improvement="No alert on pool saturation | no load test before deploys",
        ),
        held,
    )
    items = [
        ("dave", date(2026, 12, 3), "monitoring", "Alert on pool saturation"),
        ("carol", date(2026, 12, 4), "runbook", "Pool exhaustion runbook"),
        ("bob", date(2026, 12, 5), "process", "Load test before deploys"),
    ]
    for owner, due, kind, title in items:
        req = AddActionItem(by="erin", title=title, owner=owner, due=due, kind=kind)
        pm.add_item(progress, req, policy(), held)
    closed = CloseActionItem(by="dave", number=1, evidence="https://grafana.example/d/pool")
    pm.close_item(progress, closed, held + timedelta(days=3))
    pm.verify_item(progress, VerifyActionItem(by="erin", number=1), held + timedelta(days=4))
    closed2 = CloseActionItem(by="carol", number=2, evidence="runbooks/api.md#pool")
    pm.close_item(progress, closed2, held + timedelta(days=5))
    now = T0 + timedelta(days=10)  # item 3 was due 2026-12-05: overdue
    text = render_postmortem_document(state, policy(), now, progress)
    assert at < held < now
    if REGENERATE:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        f"the document differs from {GOLDEN}; if intended, regenerate with "
        "FIREWATCH_REGEN_GOLDEN=1 and read the diff"
    )


def test_prevention_and_lessons_gather_the_ticket_the_meeting_and_the_items() -> None:
    """Nothing anyone wrote is dropped: the ticket's notes first, then the meeting's, then
    each item under its kind's line; prevention items split at 30 days after the review."""
    review = T0 + timedelta(hours=29)
    progress = PostmortemProgress(review_at=review, document_path="pm.md")
    pm.record_meeting(
        progress,
        RecordMeeting(
            by="erin",
            process_improvements="Capacity review each quarter",
            what_went_well="Fast acknowledgement",
            areas_for_improvement="No load test before deploys",
        ),
        review,
    )
    day = review.date()
    items = [
        (day + timedelta(days=30), "prevention", "Raise the pool limit"),
        (day + timedelta(days=31), "prevention", "Move to a pooled proxy"),
        (day + timedelta(days=5), "monitoring", "Alert on pool saturation"),
        (day + timedelta(days=5), "process", "Load test before deploys"),
        (day + timedelta(days=5), "training", "Pool tuning session"),
    ]
    for due, kind, title in items:
        req = AddActionItem(by="erin", title=title, owner="dave", due=due, kind=kind)
        pm.add_item(progress, req, policy(), review)
    ticket = TicketFields(
        what_went_well="Fast acknowledgement",  # said again in the meeting: shown once
        areas_for_improvement="Paging took two tries",
        process_changes="Deploy freeze on Fridays",
    )

    shown = postmortem_ticket_fields(ticket, progress, BusinessHours())

    assert shown.prevention_short_term == "#1 Raise the pool limit"
    assert shown.prevention_long_term == "#2 Move to a pooled proxy"
    assert shown.monitoring_improvements == "#3 Alert on pool saturation"
    assert shown.process_changes == (
        "Deploy freeze on Fridays; Capacity review each quarter; #4 Load test before deploys"
    )
    assert shown.what_went_well == "Fast acknowledgement"
    assert shown.areas_for_improvement == "Paging took two tries; No load test before deploys"


def test_with_nothing_written_the_lines_stay_blank() -> None:
    progress = PostmortemProgress(review_at=T0 + timedelta(hours=29), document_path="pm.md")
    shown = postmortem_ticket_fields(TicketFields(), progress, BusinessHours())
    assert shown == TicketFields()


def test_short_term_counts_days_in_the_teams_time_zone() -> None:
    """A Sydney review at 10:00 on Wednesday 2 December is 23:00 UTC on the 1st: an item due
    30 Sydney days later is still short-term."""
    sydney = BusinessHours(timezone="Australia/Sydney")
    review = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    progress = PostmortemProgress(review_at=review, document_path="pm.md")
    for due, title in ((date(2027, 1, 1), "Raise the pool limit"), (date(2027, 1, 2), "Proxy")):
        req = AddActionItem(by="erin", title=title, owner="dave", due=due, kind="prevention")
        pm.add_item(progress, req, policy(), review)

    shown = postmortem_ticket_fields(TicketFields(), progress, sydney)

    assert shown.prevention_short_term == "#1 Raise the pool limit"
    assert shown.prevention_long_term == "#2 Proxy"
