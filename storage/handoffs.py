"""The weekly handoff in Firewatch's database: results, notes, integrations last seen.

``save`` keeps the newest version of each handoff (the workflow writes it as it goes; an
older retried write never overwrites a newer one). ``touch_integration`` is called by
ingest on every alert, so it writes at most once a minute per integration per process.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from domain.handoff import HandoffNote, HandoffResult
from storage import dialects
from storage.database import Database, timestamp
from storage.schema import handoff_notes, handoffs, integration_seen

HANDOFF_LOCK = "firewatch:handoffs"
TOUCH_EVERY = timedelta(minutes=1)

_h = handoffs.c
_n = handoff_notes.c
_i = integration_seen.c


class Handoffs:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._touched: dict[str, datetime] = {}
        self._touch_lock = threading.Lock()

    # ---- results ---------------------------------------------------------------------------

    def save(self, result: HandoffResult, version: int, at: datetime | None = None) -> bool:
        """Store ``result`` unless a newer version is stored already. True if written."""
        now = at or datetime.now(UTC)
        report = result.report
        values = {
            "workflow_id": result.workflow_id,
            "role": result.role.value,
            "shift_start": timestamp(report.shift_start),
            "outgoing": report.outgoing.name,
            "incoming": report.incoming.name,
            "status": result.status,
            "version": version,
            "unverified": len(result.unverified),
            "result": result.model_dump_json(),
            "started_at": timestamp(result.started_at),
            "updated_at": timestamp(now),
        }
        with self.database.write(lock=HANDOFF_LOCK) as db:
            stored = db.execute(
                select(_h.version).where(_h.handoff_id == result.handoff_id)
            ).scalar_one_or_none()
            if stored is None:
                db.execute(insert(handoffs).values(handoff_id=result.handoff_id, **values))
                return True
            if stored > version:
                return False
            db.execute(update(handoffs).where(_h.handoff_id == result.handoff_id).values(**values))
        return True

    def get(self, hid: str) -> HandoffResult | None:
        with self.database.read() as db:
            raw = db.execute(select(_h.result).where(_h.handoff_id == hid)).scalar_one_or_none()
        return HandoffResult.model_validate_json(raw) if raw is not None else None

    def recent(self, limit: int = 20, role: str | None = None) -> list[HandoffResult]:
        """The newest ``limit`` handoffs, newest first."""
        query = select(_h.result).order_by(_h.started_at.desc()).limit(max(limit, 0))
        if role is not None:
            query = query.where(_h.role == role)
        with self.database.read() as db:
            rows = db.execute(query).scalars().all()
        return [HandoffResult.model_validate_json(r) for r in rows]

    def latest(self, role: str | None = None) -> HandoffResult | None:
        found = self.recent(1, role)
        return found[0] if found else None

    # ---- notes -----------------------------------------------------------------------------

    def add_note(self, author: str, text: str, at: datetime | None = None) -> HandoffNote:
        now = at or datetime.now(UTC)
        with self.database.write() as db:
            new_id = db.execute(
                insert(handoff_notes)
                .values(author=author, text=text, created_at=timestamp(now))
                .returning(_n.id)
            ).scalar_one()
        return HandoffNote(id=int(new_id), by=author, text=text, at=now)

    def notes(self, author: str, since: datetime, until: datetime) -> list[HandoffNote]:
        """``author``'s notes written in ``[since, until]``, oldest first."""
        with self.database.read() as db:
            rows = db.execute(
                select(_n.id, _n.author, _n.text, _n.created_at)
                .where(
                    _n.author == author,
                    _n.created_at >= timestamp(since),
                    _n.created_at <= timestamp(until),
                )
                .order_by(_n.id)
            ).all()
        return [
            HandoffNote(id=int(r[0]), by=r[1], text=r[2], at=datetime.fromisoformat(r[3]))
            for r in rows
        ]

    # ---- integrations last seen ------------------------------------------------------------

    def touch_due(self, name: str, at: datetime | None = None) -> bool:
        """True (once per ``TOUCH_EVERY`` per name here) when ``name`` should be written."""
        now = at or datetime.now(UTC)
        with self._touch_lock:
            last = self._touched.get(name)
            if last is not None and timedelta(0) <= now - last < TOUCH_EVERY:
                return False
            self._touched[name] = now
        return True

    def touch_integration(self, name: str, at: datetime | None = None) -> bool:
        """Record that ``name`` sent something (a later time only ever moves it forward)."""
        now = at or datetime.now(UTC)
        stamp = timestamp(now)
        with self.database.write() as db:
            # One statement: processes racing on a new name cannot lose the later time.
            db.execute(
                dialects.upsert(
                    db,
                    integration_seen,
                    {"name": name, "last_seen_at": stamp},
                    ["name"],
                    {"last_seen_at": lambda new: new.last_seen_at},
                    where=lambda new: _i.last_seen_at < new.last_seen_at,
                )
            )
        return True

    def integrations_seen(self) -> dict[str, datetime]:
        with self.database.read() as db:
            rows = db.execute(select(_i.name, _i.last_seen_at)).all()
        return {r[0]: datetime.fromisoformat(r[1]) for r in rows}
