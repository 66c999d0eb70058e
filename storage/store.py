"""Incident numbers (with the INC id -> workflow run mapping), the outbox and the change feed.

``incident_numbers`` is the durable INC id -> workflow run mapping: the API reads it to
find an incident the moment its id is handed out, and to list summaries. ``changes`` holds
the deployments and config changes CI/CD reports (``domain.changes``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.engine import URL

from domain.changes import Change, ChangeLink
from domain.ids import format_incident_id, parse_incident_id
from storage import dialects
from storage.database import Database, database_url, timestamp
from storage.schema import changes as changes_table
from storage.schema import incident_numbers, mitigation_runs, outbox

SUMMARY_CHARS = 1024
# Allocations are serialised on this lock (SQLite: the write lock; PostgreSQL: advisory),
# so the number is gapless per day and a run's retry finds the number it was given.
ALLOCATION_LOCK = "firewatch:incident_numbers"


@dataclass(frozen=True)
class IncidentEntry:
    """One incident as recorded when its id was allocated (listing fields None before)."""

    incident_id: str
    workflow_id: str
    run_id: str  # the run that opened it (later runs of the same incident: continue-as-new)
    opened_at: datetime | None
    summary: str | None
    service: str | None
    severity: str | None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    idempotency_key: str
    incident_id: str
    kind: str
    recipient: str
    channel: str
    subject: str
    text: str
    scheduled_at: datetime
    recorded_at: datetime
    status: str

    def as_dict(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["scheduled_at"] = self.scheduled_at.isoformat()
        data["recorded_at"] = self.recorded_at.isoformat()
        return data


@dataclass(frozen=True)
class MitigationRun:
    """One mitigation action's ledger row (``mitigation_runs``), by idempotency key.

    ``pending`` is written before the action is sent; ``succeeded``, ``failed`` or
    ``unknown`` after, with the result (a ``MitigationResult`` as JSON)."""

    idempotency_key: str
    incident_id: str
    action: str
    status: str  # pending, succeeded, failed, unknown
    attempts: int
    result: dict[str, Any] | None
    started_at: datetime
    updated_at: datetime


_n = incident_numbers.c
_ENTRY = (_n.day, _n.sequence, _n.workflow_key, _n.opened_at, _n.summary, _n.service, _n.severity)
_o = outbox.c
_OUTBOX = (
    _o.id,
    _o.idempotency_key,
    _o.incident_id,
    _o.kind,
    _o.recipient,
    _o.channel,
    _o.subject,
    _o.text,
    _o.scheduled_at,
    _o.recorded_at,
    _o.status,
)


_m = mitigation_runs.c
_MITIGATION = (
    _m.idempotency_key,
    _m.incident_id,
    _m.action,
    _m.status,
    _m.attempts,
    _m.result,
    _m.started_at,
    _m.updated_at,
)


def _mitigation(row: Sequence[Any]) -> MitigationRun:
    return MitigationRun(
        idempotency_key=row[0],
        incident_id=row[1],
        action=row[2],
        status=row[3],
        attempts=int(row[4]),
        result=json.loads(row[5]) if row[5] else None,
        started_at=datetime.fromisoformat(row[6]),
        updated_at=datetime.fromisoformat(row[7]),
    )


_c = changes_table.c
_CHANGE = (
    _c.change_id,
    _c.service,
    _c.summary,
    _c.source,
    _c.who,
    _c.at,
    _c.received_at,
    _c.integration,
    _c.links,
    _c.details,
)


def _entry(row: Sequence[Any]) -> IncidentEntry:
    day, sequence, workflow_key, opened_at, summary, service, severity = row
    workflow_id, _, run_id = str(workflow_key).rpartition("#")  # run ids hold no '#'
    return IncidentEntry(
        incident_id=format_incident_id(date.fromisoformat(day), int(sequence)),
        workflow_id=workflow_id,
        run_id=run_id,
        opened_at=datetime.fromisoformat(opened_at) if opened_at else None,
        summary=summary,
        service=service,
        severity=severity,
    )


def _change(row: Sequence[Any]) -> Change:
    change_id, service, summary, source, who, at, received_at, integration, links, details = row
    return Change(
        change_id=change_id,
        service=service,
        summary=summary,
        source=source,
        who=who,
        at=datetime.fromisoformat(at),
        received_at=datetime.fromisoformat(received_at),
        integration=integration,
        links=[ChangeLink.model_validate(link) for link in json.loads(links or "[]")],
        details=json.loads(details or "{}"),
    )


class Store:
    """Incident numbers, the outbox and the change feed in Firewatch's database.

    ``where``: a data dir (its database: ``FIREWATCH_DATABASE_URL``, else its
    ``firewatch.db``), a database URL, or an open ``Database``.
    Opening migrates the database to the newest schema. Every method is synchronous and
    short: the worker calls them from activity threads, the API through ``asyncio.to_thread``.
    """

    def __init__(self, where: Path | str | URL | Database) -> None:
        if isinstance(where, Database):
            self.database = where
        else:
            self.database = Database.open(database_url(where) if isinstance(where, Path) else where)

    @property
    def path(self) -> Path:
        """The SQLite file (for ``Ledger(store.path)``; prefer ``Ledger(store.database)``)."""
        path = self.database.sqlite_path
        if path is None:
            raise ValueError(f"{self.database.describe()} is not an SQLite file")
        return path

    # ---- incident numbers -------------------------------------------------------------

    def allocate_incident_number(
        self,
        day: date,
        workflow_key: str,
        *,
        opened_at: datetime | None = None,
        summary: str = "",
        service: str = "",
        severity: str = "",
    ) -> int:
        """Next number for ``day``; the same ``workflow_key`` always gets the same number.

        The listing fields are written with the number, in the same transaction.
        """
        with self.database.write(lock=ALLOCATION_LOCK, urgent=True) as db:
            found = db.scalar(select(_n.sequence).where(_n.workflow_key == workflow_key))
            if found is not None:
                return int(found)
            last = db.scalar(
                select(func.coalesce(func.max(_n.sequence), 0)).where(_n.day == day.isoformat())
            )
            number = int(last or 0) + 1
            db.execute(
                insert(incident_numbers).values(
                    day=day.isoformat(),
                    sequence=number,
                    workflow_key=workflow_key,
                    opened_at=timestamp(opened_at) if opened_at else None,
                    summary=summary[:SUMMARY_CHARS] or None,
                    service=service or None,
                    severity=severity or None,
                )
            )
        return number

    def incident(self, incident_id: str) -> IncidentEntry | None:
        """The run that opened ``incident_id`` (None: not allocated in this database)."""
        return self.incidents([incident_id]).get(incident_id)

    def incidents(self, incident_ids: Iterable[str]) -> dict[str, IncidentEntry]:
        """Several incidents at once (one query), by INC id; unknown ids are left out."""
        keys = {p for p in map(parse_incident_id, incident_ids) if p is not None}
        if not keys:
            return {}
        match = tuple_(_n.day, _n.sequence).in_([(d.isoformat(), s) for d, s in keys])
        with self.database.read() as db:
            rows = db.execute(select(*_ENTRY).where(match)).all()
        return {entry.incident_id: entry for entry in map(_entry, rows)}

    def incident_for_run(self, workflow_id: str, run_id: str) -> str | None:
        """The INC id a run opened (None: the run opened none, e.g. it continued one)."""
        with self.database.read() as db:
            row = db.execute(
                select(_n.day, _n.sequence).where(_n.workflow_key == f"{workflow_id}#{run_id}")
            ).first()
        return format_incident_id(date.fromisoformat(row[0]), int(row[1])) if row else None

    def opened_bound(self, count: int, *, newest: bool = True) -> datetime | None:
        """Opening time of the ``count``-th newest (or oldest) incident; None if fewer."""
        order = _n.opened_at.desc() if newest else _n.opened_at.asc()
        with self.database.read() as db:
            value = db.scalar(
                select(_n.opened_at)
                .where(_n.opened_at.is_not(None))
                .order_by(order)
                .limit(1)
                .offset(max(count, 1) - 1)
            )
        return datetime.fromisoformat(value) if value else None

    # ---- outbox -----------------------------------------------------------------------

    def record_notification(self, fields: dict[str, Any]) -> bool:
        """Insert once per idempotency key. Returns False when the key was already there."""
        return self.record_notifications([fields])[0]

    def record_notifications(self, rows: list[dict[str, Any]]) -> list[bool]:
        """``record_notification`` for each row, in one transaction (one durable commit).

        Urgent (see ``Database.write``): in the embedded default this row is the page, and
        with real channels the delivery holds one of the worker's page slots until it is
        written."""
        if not rows:
            return []
        with self.database.write(urgent=True) as db:
            return [
                db.execute(
                    dialects.insert_ignoring_conflict(db, outbox, fields, ["idempotency_key"])
                ).rowcount
                == 1
                for fields in rows
            ]

    def notifications(self, incident_id: str | None = None, limit: int = 200) -> list[OutboxRow]:
        """The newest ``limit`` notifications (of one incident), oldest first."""
        query = select(*_OUTBOX).order_by(_o.id.desc()).limit(limit)
        if incident_id:
            query = query.where(_o.incident_id == incident_id)
        with self.database.read() as db:
            rows = db.execute(query).all()
        return [
            OutboxRow(
                id=r[0],
                idempotency_key=r[1],
                incident_id=r[2],
                kind=r[3],
                recipient=r[4],
                channel=r[5],
                subject=r[6],
                text=r[7],
                scheduled_at=datetime.fromisoformat(r[8]),
                recorded_at=datetime.fromisoformat(r[9]),
                status=r[10],
            )
            for r in reversed(rows)
        ]

    # ---- mitigation runs --------------------------------------------------------------

    def mitigation_run(self, key: str) -> MitigationRun | None:
        with self.database.read() as db:
            row = db.execute(select(*_MITIGATION).where(_m.idempotency_key == key)).first()
        return _mitigation(row) if row is not None else None

    def mitigation_runs(self, incident_id: str) -> list[MitigationRun]:
        """An incident's mitigation runs, oldest first."""
        with self.database.read() as db:
            rows = db.execute(
                select(*_MITIGATION)
                .where(_m.incident_id == incident_id)
                .order_by(_m.started_at, _m.idempotency_key)
            ).all()
        return [_mitigation(r) for r in rows]

    def begin_mitigation_run(
        self, key: str, *, incident_id: str, action: str
    ) -> tuple[MitigationRun | None, MitigationRun]:
        """Record an attempt at the run ``key`` before the action goes out.

        New key: a ``pending`` row, attempt 1. A row still ``pending`` (an earlier attempt
        stopped before it finished): one more attempt. A finished row is left as it is.
        Returns the row as it was before (None: this is the first attempt) and as it is now;
        one transaction, so two attempts never both see "first".
        """
        now = timestamp(datetime.now(UTC))
        with self.database.write() as db:
            # Insert first: on PostgreSQL two attempts at once would otherwise both find no
            # row and both insert. A conflicting insert waits for the other's commit.
            inserted = db.execute(
                dialects.insert_ignoring_conflict(
                    db,
                    mitigation_runs,
                    {
                        "idempotency_key": key,
                        "incident_id": incident_id,
                        "action": action,
                        "status": "pending",
                        "attempts": 1,
                        "result": None,
                        "started_at": now,
                        "updated_at": now,
                    },
                    ["idempotency_key"],
                )
            ).rowcount
            before = None
            if inserted != 1:
                found = db.execute(
                    select(*_MITIGATION).where(_m.idempotency_key == key).with_for_update()
                ).one()
                before = _mitigation(found)
                if before.status == "pending":
                    db.execute(
                        update(mitigation_runs)
                        .where(_m.idempotency_key == key)
                        .values(attempts=_m.attempts + 1, updated_at=now)
                    )
            after = db.execute(select(*_MITIGATION).where(_m.idempotency_key == key)).one()
        return before, _mitigation(after)

    def finish_mitigation_run(self, key: str, status: str, result: dict[str, Any]) -> bool:
        """The "after" record of a ``pending`` run: its status and result. False: the row was
        not pending (missing, or already finished by another attempt: that result stands)."""
        with self.database.write() as db:
            changed = db.execute(
                update(mitigation_runs)
                .where(_m.idempotency_key == key, _m.status == "pending")
                .values(
                    status=status,
                    result=json.dumps(result),
                    updated_at=timestamp(datetime.now(UTC)),
                )
            ).rowcount
        return changed == 1

    # ---- change feed ------------------------------------------------------------------

    def record_change(self, change: Change) -> bool:
        """Insert once per (service, change_id). Returns False, changing nothing, when that
        change was already recorded (a re-sent deploy)."""
        fields = {
            "change_id": change.change_id,
            "service": change.service,
            "summary": change.summary,
            "source": change.source,
            "who": change.who,
            "at": timestamp(change.at),
            "received_at": timestamp(change.received_at),
            "integration": change.integration,
            "links": json.dumps(
                [link.model_dump(exclude_none=True) for link in change.links], ensure_ascii=False
            ),
            "details": json.dumps(change.details, ensure_ascii=False, default=str),
        }
        with self.database.write() as db:
            inserted = db.execute(
                dialects.insert_ignoring_conflict(
                    db, changes_table, fields, ["service", "change_id"]
                )
            ).rowcount
        return bool(inserted == 1)

    def change(self, service: str, change_id: str) -> Change | None:
        """One recorded change by its key (None: not recorded)."""
        query = select(*_CHANGE).where(_c.service == service, _c.change_id == change_id)
        with self.database.read() as db:
            row = db.execute(query).first()
        return _change(row) if row else None

    def changes(
        self, service: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[Change]:
        """The newest ``limit`` changes (of one service, at or after ``since``), newest first
        (by when they happened, then by arrival)."""
        query = select(*_CHANGE).order_by(_c.at.desc(), _c.id.desc()).limit(max(limit, 0))
        if service is not None:
            query = query.where(_c.service == service)
        if since is not None:
            query = query.where(_c.at >= timestamp(since))
        with self.database.read() as db:
            rows = db.execute(query).all()
        return [_change(row) for row in rows]
