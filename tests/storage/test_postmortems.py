"""Post-mortem and action-item rows (storage.postmortems): snapshots in order, the lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain import postmortem as pm
from domain.postmortem import AddActionItem, CloseActionItem, PostmortemProgress, RecordMeeting
from storage.database import Database
from storage.postmortems import FollowThrough, Postmortems, Snapshot, follow_through
from tests.domain.support import policy

NOW = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


def _snapshot(
    progress: PostmortemProgress, version: int, incident: str = "INC-2026-11-26-001"
) -> Snapshot:
    return Snapshot(
        incident_id=incident,
        workflow_id=f"postmortem/{incident}",
        version=version,
        severity="P1",
        service="api",
        summary="API p99 > 5s",
        resolved_at=NOW - timedelta(hours=1),
        timezone="America/New_York",
        progress=progress,
        at=NOW,
    )


def test_rows_follow_the_newest_snapshot_and_list_by_owner_and_overdue(store_url: str) -> None:
    rows = Postmortems(Database.open(store_url))
    progress = PostmortemProgress(review_at=NOW + timedelta(hours=2), document_path="pm.md")
    assert rows.save(_snapshot(progress, 1))
    pm.record_meeting(progress, RecordMeeting(by="erin", what_went_well="x"), NOW)
    for owner, due in (("dave", date(2026, 12, 3)), ("carol", date(2026, 12, 10))):
        req = AddActionItem(by="erin", title=f"{owner}'s", owner=owner, due=due, kind="training")
        pm.add_item(progress, req, policy(), NOW)
    pm.close_item(progress, CloseActionItem(by="carol", number=2, evidence="done"), NOW)
    assert rows.save(_snapshot(progress, 3))
    assert not rows.save(_snapshot(PostmortemProgress(review_at=NOW), 2))  # a late retry

    [row] = rows.postmortems(open_only=True)
    assert (row.stage, row.items_total, row.items_open, row.lessons_filled) == (
        "action_items",
        2,
        2,
        False,
    )
    items = rows.action_items()
    assert [(i.number, i.owner, i.status) for i in items] == [
        (1, "dave", "open"),
        (2, "carol", "closed"),
    ]
    assert items[1].closed_on_time is True and items[0].closed_on_time is None
    assert [i.number for i in rows.action_items(owner="carol")] == [2]
    # Dave's item is due 2026-12-03: overdue from 05:00 UTC on the 4th (New York midnight).
    due = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
    assert rows.action_items(overdue_at=due - timedelta(seconds=1)) == []
    [late] = rows.action_items(overdue_at=due)
    assert (late.number, late.overdue) == (1, True)

    december = follow_through(
        rows.database, datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert december == FollowThrough(
        postmortems=0,  # resolved in November
        postmortems_complete=0,
        items_due=2,
        items_closed_on_time=1,  # Carol's
        items_closed_late=0,
        items_open=1,
    )
    november = follow_through(rows.database, datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert (november.postmortems, november.postmortems_complete) == (1, 0)

    progress.completed_at = NOW
    assert rows.save(_snapshot(progress, 4))
    assert (
        follow_through(rows.database, datetime(2026, 11, 1, tzinfo=UTC), NOW).postmortems_complete
        == 1
    )
    assert rows.postmortems(open_only=True) == []
    assert [r.stage for r in rows.postmortems()] == ["complete"]
