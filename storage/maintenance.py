"""Maintenance windows in Firewatch's database (``maintenance_windows``; rules in
``domain.maintenance``).

Rows are never deleted by people: ending a window early sets ``ended_at``/``ended_by``, so
the list keeps showing what was planned and what happened. ``active_for`` is what every
alert's ingest asks: one indexed query on (service, ends_at).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update

from domain.maintenance import MaintenanceWindow, NewWindow
from storage.database import Database, timestamp
from storage.schema import maintenance_windows

_w = maintenance_windows.c
_COLUMNS = (
    _w.id,
    _w.service,
    _w.starts_at,
    _w.ends_at,
    _w.reason,
    _w.created_by,
    _w.created_at,
    _w.ended_at,
    _w.ended_by,
)


def _window(row: Sequence[Any]) -> MaintenanceWindow:
    id_, service, starts_at, ends_at, reason, created_by, created_at, ended_at, ended_by = row
    return MaintenanceWindow(
        id=int(id_),
        service=service,
        starts_at=datetime.fromisoformat(starts_at),
        ends_at=datetime.fromisoformat(ends_at),
        reason=reason,
        created_by=created_by,
        created_at=datetime.fromisoformat(created_at),
        ended_at=datetime.fromisoformat(ended_at) if ended_at else None,
        ended_by=ended_by,
    )


def _not_over(at: datetime) -> ColumnElement[bool]:
    """Still holding pages after ``at`` (scheduled, or on): as stored, as text times sort."""
    stamp = timestamp(at)
    return and_(_w.ends_at > stamp, or_(_w.ended_at.is_(None), _w.ended_at > stamp))


class MaintenanceWindows:
    """Add, list, end windows; which one (if any) holds a service's pages at an instant.

    Synchronous and short like ``storage.store.Store``: the API calls it through
    ``asyncio.to_thread``, the worker from activity threads.
    """

    def __init__(self, db: Database) -> None:
        self.database = db

    def add(self, window: NewWindow, now: datetime) -> MaintenanceWindow:
        values = {
            "service": window.service,
            "starts_at": timestamp(window.starts_at),
            "ends_at": timestamp(window.ends_at),
            "reason": window.reason,
            "created_by": window.created_by,
            "created_at": timestamp(now),
        }
        with self.database.write() as db:
            new_id = db.execute(insert(maintenance_windows).values(**values)).inserted_primary_key
            assert new_id is not None
            row = db.execute(select(*_COLUMNS).where(_w.id == new_id[0])).one()
        return _window(row)

    def get(self, window_id: int) -> MaintenanceWindow | None:
        with self.database.read() as db:
            row = db.execute(select(*_COLUMNS).where(_w.id == window_id)).first()
        return _window(row) if row is not None else None

    def list(
        self,
        *,
        service: str | None = None,
        now: datetime | None = None,
        include_past: bool = False,
        limit: int = 100,
    ) -> builtins.list[MaintenanceWindow]:
        """Windows by start time (soonest first); without ``include_past`` only those not
        over at ``now`` (on, or scheduled)."""
        query = select(*_COLUMNS).order_by(_w.starts_at, _w.id).limit(max(limit, 0))
        if service is not None:
            query = query.where(_w.service == service)
        if not include_past:
            query = query.where(_not_over(now or datetime.now(UTC)))
        with self.database.read() as db:
            rows = db.execute(query).all()
        return [_window(row) for row in rows]

    def end(self, window_id: int, by: str, at: datetime) -> MaintenanceWindow | None:
        """End a window early (or cancel a scheduled one): None when it was over already
        (or never existed). One conditional update: two people ending it at once end it once."""
        with self.database.write() as db:
            changed = db.execute(
                update(maintenance_windows)
                .where(_w.id == window_id, _not_over(at))
                .values(ended_at=timestamp(at), ended_by=by)
            ).rowcount
            if changed != 1:
                return None
            row = db.execute(select(*_COLUMNS).where(_w.id == window_id)).one()
        return _window(row)

    def remove(self, window_id: int) -> None:
        """Undo an ``add`` whose announcements could not be scheduled (Temporal down)."""
        with self.database.write() as db:
            db.execute(delete(maintenance_windows).where(_w.id == window_id))

    def active_for(self, service: str, at: datetime) -> MaintenanceWindow | None:
        """The window holding ``service``'s pages at ``at`` (of several, the one ending
        last), or None. Indexed by (service, ends_at)."""
        stamp = timestamp(at)
        query = (
            select(*_COLUMNS)
            .where(_w.service == service, _not_over(at), _w.starts_at <= stamp)
            .order_by(_w.ends_at.desc(), _w.id.desc())
        )
        with self.database.read() as db:
            rows = db.execute(query).all()
        # Ordering by stored ends_at is a good guess; the rule itself decides.
        windows = [_window(row) for row in rows]
        return max(windows, key=lambda w: (w.effective_end, w.id)) if windows else None
