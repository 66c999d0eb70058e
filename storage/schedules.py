"""Overrides and swaps made at run time, and the schedule's audit trail.

Every change is checked and written in one transaction, serialised on one lock, so two
people adding overlapping overrides at once cannot both succeed, and the two halves of a
swap are stored together or not at all. Removal keeps the row (``removed_at``); the audit
trail records who added, swapped and removed what, and when.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select, update

from domain.policy import Override, Role
from domain.schedule import ScheduledOverride, ScheduleError
from storage.database import Database, timestamp
from storage.schema import schedule_audit, schedule_overrides

SCHEDULE_LOCK = "firewatch:schedule"

_s = schedule_overrides.c
_OVERRIDE = (
    _s.id,
    _s.role,
    _s.person,
    _s.starts_at,
    _s.ends_at,
    _s.reason,
    _s.swap_id,
    _s.created_by,
    _s.created_at,
)
_a = schedule_audit.c


def _override(row: Sequence[Any]) -> ScheduledOverride:
    return ScheduledOverride(
        id=int(row[0]),
        role=Role(row[1]),
        person=row[2],
        start=datetime.fromisoformat(row[3]),
        end=datetime.fromisoformat(row[4]),
        reason=row[5],
        swap_id=row[6],
        created_by=row[7],
        created_at=datetime.fromisoformat(row[8]),
    )


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    action: str  # added, removed, swapped
    override_id: int | None
    detail: dict[str, Any]


# What a change is checked against: the active run-time overrides, read inside the
# transaction that writes it.
Check = Callable[[list[ScheduledOverride]], Sequence[Override]]


class Schedules:
    """Run-time overrides in Firewatch's database (see ``storage.Database``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _active(self, db: Connection, after: datetime) -> list[ScheduledOverride]:
        rows = db.execute(
            select(*_OVERRIDE)
            .where(_s.removed_at.is_(None), _s.ends_at > timestamp(after))
            .order_by(_s.id)
        ).all()
        return [_override(r) for r in rows]

    def active(self, after: datetime, role: Role | None = None) -> list[ScheduledOverride]:
        """Overrides not removed that end after ``after``, oldest first (later ones win)."""
        with self.database.read() as db:
            found = self._active(db, after)
        return [o for o in found if role is None or o.role == role]

    def covering(self, at: datetime) -> list[ScheduledOverride]:
        """Overrides in force at ``at``: what a page sent at ``at`` must respect."""
        stamp = timestamp(at)
        with self.database.read() as db:
            rows = db.execute(
                select(*_OVERRIDE)
                .where(_s.removed_at.is_(None), _s.starts_at <= stamp, _s.ends_at > stamp)
                .order_by(_s.id)
            ).all()
        return [_override(r) for r in rows]

    def add(
        self,
        check: Check,
        *,
        actor: str,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> list[ScheduledOverride]:
        """Store the overrides ``check`` returns, given the active ones (it raises
        :class:`ScheduleError` to refuse). Two or more are a swap: one ``swap_id``."""
        now = now or datetime.now(UTC)
        with self.database.write(lock=SCHEDULE_LOCK) as db:
            wanted = list(check(self._active(db, now)))
            swap_id = uuid.uuid4().hex[:12] if len(wanted) > 1 else None
            ids = [
                db.execute(
                    insert(schedule_overrides)
                    .values(
                        role=o.role.value,
                        person=o.person,
                        starts_at=timestamp(o.start),
                        ends_at=timestamp(o.end),
                        reason=reason,
                        swap_id=swap_id,
                        created_by=actor,
                        created_at=timestamp(now),
                    )
                    .returning(_s.id)
                ).scalar_one()
                for o in wanted
            ]
            rows = db.execute(select(*_OVERRIDE).where(_s.id.in_(ids)).order_by(_s.id)).all()
            made = [_override(r) for r in rows]
            for o in made:
                self._audit(db, now, actor, "swapped" if swap_id else "added", o)
        return made

    def remove(self, override_id: int, *, actor: str) -> list[ScheduledOverride]:
        """Remove an override (both halves, for a swap). Returns what was removed."""
        now = datetime.now(UTC)
        with self.database.write(lock=SCHEDULE_LOCK) as db:
            row = db.execute(
                select(*_OVERRIDE).where(_s.id == override_id, _s.removed_at.is_(None))
            ).first()
            if row is None:
                gone = db.execute(
                    select(_s.removed_by, _s.removed_at).where(_s.id == override_id)
                ).first()
                if gone is not None:  # said as it is: a second remove is not a typo
                    when = datetime.fromisoformat(gone[1])
                    raise ScheduleError(
                        f"override #{override_id} was already removed by {gone[0]}"
                        f" at {when:%Y-%m-%d %H:%M} UTC"
                    )
                raise ScheduleError(f"there is no override #{override_id} (see `override list`)")
            found = _override(row)
            match = _s.swap_id == found.swap_id if found.swap_id else _s.id == found.id
            rows = db.execute(
                select(*_OVERRIDE).where(match, _s.removed_at.is_(None)).order_by(_s.id)
            ).all()
            removed = [_override(r) for r in rows]
            db.execute(
                update(schedule_overrides)
                .where(_s.id.in_([o.id for o in removed]))
                .values(removed_at=timestamp(now), removed_by=actor)
            )
            for o in removed:
                self._audit(db, now, actor, "removed", o)
        return removed

    def audit(self, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` schedule changes, newest first."""
        with self.database.read() as db:
            rows = db.execute(
                select(_a.at, _a.actor, _a.action, _a.override_id, _a.detail)
                .order_by(_a.id.desc())
                .limit(limit)
            ).all()
        return [
            AuditEntry(
                at=datetime.fromisoformat(r[0]),
                actor=r[1],
                action=r[2],
                override_id=r[3],
                detail=json.loads(r[4] or "{}"),
            )
            for r in rows
        ]

    @staticmethod
    def _audit(db: Connection, at: datetime, actor: str, action: str, o: ScheduledOverride) -> None:
        detail = o.model_dump(mode="json", include={"role", "person", "start", "end", "reason"})
        if o.swap_id:
            detail["swap_id"] = o.swap_id
        db.execute(
            insert(schedule_audit).values(
                at=timestamp(at),
                actor=actor,
                action=action,
                override_id=o.id,
                detail=json.dumps(detail, ensure_ascii=False),
            )
        )
