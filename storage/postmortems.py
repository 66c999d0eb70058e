"""Post-mortems and action items in Firewatch's database (``postmortems``, ``action_items``).

The post-mortem workflow writes a whole snapshot at every change (``save``): one row for the
post-mortem, one per action item, skipped when a newer snapshot is stored already (a late
retry). Lists and reports read them here without asking Temporal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select, update

from domain.policy import BusinessHours
from domain.postmortem import (
    AGENDA_FIELDS,
    LESSONS_FIELDS,
    ItemStatus,
    PostmortemProgress,
    due_at,
    lessons_filled,
    open_items,
    stage,
)
from storage.database import Database, timestamp
from storage.schema import action_items, postmortems

_p = postmortems.c
_a = action_items.c


class PostmortemRow(BaseModel):
    incident_id: str
    workflow_id: str
    severity: str
    service: str
    summary: str
    stage: str
    resolved_at: datetime | None
    review_at: datetime
    held_at: datetime | None
    held_by: str | None
    lessons_filled: bool
    items_total: int
    items_open: int
    completed_at: datetime | None
    completed_by: str | None
    document_path: str | None
    updated_at: datetime


class ActionItemRow(BaseModel):
    incident_id: str
    number: int
    title: str
    owner: str
    kind: str
    due: date
    due_at: datetime
    status: str
    overdue: bool
    created_by: str
    created_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    evidence: str | None
    verified_by: str | None
    verified_at: datetime | None
    closed_on_time: bool | None


class Snapshot(BaseModel):
    """One post-mortem as the workflow holds it, with what the rows need besides."""

    incident_id: str
    workflow_id: str
    version: int
    severity: str
    service: str
    summary: str
    resolved_at: datetime | None
    timezone: str
    progress: PostmortemProgress
    at: datetime


def _ts(at: datetime | None) -> str | None:
    return timestamp(at) if at is not None else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Postmortems:
    """Synchronous and short like ``storage.store.Store``."""

    def __init__(self, db: Database) -> None:
        self.database = db

    def save(self, snap: Snapshot) -> bool:
        """Store a snapshot; False when a newer (or the same) version is stored already."""
        pm = snap.progress
        hours = BusinessHours(timezone=snap.timezone)
        notes = {f: getattr(pm.meeting, f) for f, _ in (*AGENDA_FIELDS, *LESSONS_FIELDS)}
        row = {
            "workflow_id": snap.workflow_id,
            "version": snap.version,
            "severity": snap.severity,
            "service": snap.service,
            "summary": snap.summary,
            "stage": stage(pm).value,
            "resolved_at": _ts(snap.resolved_at),
            "review_at": timestamp(pm.review_at),
            "held_at": _ts(pm.held_at),
            "held_by": pm.held_by,
            "lessons_filled": int(lessons_filled(pm.meeting)),
            "items_total": len(pm.items),
            "items_open": open_items(pm),
            "completed_at": _ts(pm.completed_at),
            "completed_by": pm.completed_by,
            "document_path": pm.document_path,
            "detail": json.dumps({"notes": notes}, sort_keys=True),
            "updated_at": timestamp(snap.at),
        }
        items = [
            {
                "incident_id": snap.incident_id,
                "number": i.number,
                "title": i.title,
                "owner": i.owner,
                "kind": i.kind.value,
                "due": i.due.isoformat(),
                "due_at": timestamp(due_at(i.due, hours)),
                "status": i.status.value,
                "created_by": i.created_by,
                "created_at": timestamp(i.created_at),
                "closed_by": i.closed_by,
                "closed_at": _ts(i.closed_at),
                "evidence": i.evidence,
                "verified_by": i.verified_by,
                "verified_at": _ts(i.verified_at),
                "overdue_notices": i.overdue_notices,
                "updated_at": timestamp(i.updated_at),
            }
            for i in pm.items
        ]
        with self.database.write(lock=f"firewatch:postmortem:{snap.incident_id}") as db:
            stored = db.execute(
                select(_p.version).where(_p.incident_id == snap.incident_id)
            ).scalar_one_or_none()
            if stored is not None and stored >= snap.version:
                return False
            if stored is None:
                db.execute(insert(postmortems).values(incident_id=snap.incident_id, **row))
            else:
                db.execute(
                    update(postmortems).where(_p.incident_id == snap.incident_id).values(**row)
                )
            db.execute(delete(action_items).where(_a.incident_id == snap.incident_id))
            if items:
                db.execute(insert(action_items), items)
        return True

    def postmortems(self, *, open_only: bool = False, limit: int = 200) -> list[PostmortemRow]:
        query = select(postmortems).order_by(_p.review_at.desc()).limit(max(limit, 0))
        if open_only:
            query = query.where(_p.completed_at.is_(None))
        with self.database.read() as db:
            rows = db.execute(query).mappings().all()
        return [_postmortem(r) for r in rows]

    def action_items(
        self,
        *,
        owner: str | None = None,
        overdue_at: datetime | None = None,
        incident_id: str | None = None,
        open_only: bool = False,
        now: datetime | None = None,
        limit: int = 500,
    ) -> list[ActionItemRow]:
        """Action items by due date; ``overdue_at``: only those open and overdue then."""
        at = now or overdue_at or datetime.now(UTC)
        query = select(action_items).order_by(_a.due_at, _a.incident_id, _a.number)
        if owner is not None:
            query = query.where(_a.owner == owner)
        if incident_id is not None:
            query = query.where(_a.incident_id == incident_id)
        if open_only:
            query = query.where(_a.status != ItemStatus.VERIFIED.value)
        if overdue_at is not None:
            query = query.where(
                _a.status == ItemStatus.OPEN.value, _a.due_at <= timestamp(overdue_at)
            )
        with self.database.read() as db:
            rows = db.execute(query.limit(max(limit, 0))).mappings().all()
        return [_item(r, at) for r in rows]


class FollowThrough(BaseModel):
    """A period's numbers for the monthly report: post-mortems of the incidents resolved in
    it, and the action items due in it."""

    postmortems: int
    postmortems_complete: int
    items_due: int
    items_closed_on_time: int
    items_closed_late: int
    items_open: int


def _count(db: Any, query: Any) -> int:
    return int(db.execute(query).scalar_one())


def follow_through(database: Database, start: datetime, end: datetime) -> FollowThrough:
    """Counts over [start, end): completion rate = complete / post-mortems; on time = closed
    before the end of the due date."""
    lo, hi = timestamp(start), timestamp(end)
    resolved = (_p.resolved_at >= lo, _p.resolved_at < hi)
    due = (_a.due_at >= lo, _a.due_at < hi)
    count = func.count()
    with database.read() as db:
        return FollowThrough(
            postmortems=_count(db, select(count).select_from(postmortems).where(*resolved)),
            postmortems_complete=_count(
                db,
                select(count)
                .select_from(postmortems)
                .where(*resolved, _p.completed_at.is_not(None)),
            ),
            items_due=_count(db, select(count).select_from(action_items).where(*due)),
            items_closed_on_time=_count(
                db, select(count).select_from(action_items).where(*due, _a.closed_at < _a.due_at)
            ),
            items_closed_late=_count(
                db, select(count).select_from(action_items).where(*due, _a.closed_at >= _a.due_at)
            ),
            items_open=_count(
                db, select(count).select_from(action_items).where(*due, _a.closed_at.is_(None))
            ),
        )


def _postmortem(r: Any) -> PostmortemRow:
    return PostmortemRow(
        incident_id=r["incident_id"],
        workflow_id=r["workflow_id"],
        severity=r["severity"],
        service=r["service"],
        summary=r["summary"],
        stage=r["stage"],
        resolved_at=_dt(r["resolved_at"]),
        review_at=datetime.fromisoformat(r["review_at"]),
        held_at=_dt(r["held_at"]),
        held_by=r["held_by"],
        lessons_filled=bool(r["lessons_filled"]),
        items_total=r["items_total"],
        items_open=r["items_open"],
        completed_at=_dt(r["completed_at"]),
        completed_by=r["completed_by"],
        document_path=r["document_path"],
        updated_at=datetime.fromisoformat(r["updated_at"]),
    )


def _item(r: Any, now: datetime) -> ActionItemRow:
    due_time = datetime.fromisoformat(r["due_at"])
    closed = _dt(r["closed_at"])
    return ActionItemRow(
        incident_id=r["incident_id"],
        number=r["number"],
        title=r["title"],
        owner=r["owner"],
        kind=r["kind"],
        due=date.fromisoformat(r["due"]),
        due_at=due_time,
        status=r["status"],
        overdue=r["status"] == ItemStatus.OPEN.value and now >= due_time,
        created_by=r["created_by"],
        created_at=datetime.fromisoformat(r["created_at"]),
        closed_by=r["closed_by"],
        closed_at=closed,
        evidence=r["evidence"],
        verified_by=r["verified_by"],
        verified_at=_dt(r["verified_at"]),
        closed_on_time=(closed < due_time) if closed is not None else None,
    )


def rows_of(items: Sequence[ActionItemRow]) -> list[dict[str, Any]]:
    return [i.model_dump(mode="json") for i in items]
