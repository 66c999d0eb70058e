"""The worker's durable local store (SQLite in the data dir): outbox and incident numbers.

``incident_numbers`` is also the durable INC id -> workflow run mapping: the API reads it
(same data dir) to find an incident the moment its id is handed out, and to list summaries.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from domain.ids import format_incident_id, parse_incident_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    incident_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'sent',
    detail TEXT
);
CREATE INDEX IF NOT EXISTS outbox_incident ON outbox (incident_id);
CREATE TABLE IF NOT EXISTS incident_numbers (
    day TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    workflow_key TEXT NOT NULL UNIQUE,  -- "<workflow id>#<run id>" of the opening run
    PRIMARY KEY (day, sequence)
);
"""

# Added to incident_numbers after it first shipped; ``Store`` adds them to older files.
_INCIDENT_COLUMNS = (
    ("opened_at", "TEXT"),  # UTC, isoformat with microseconds: sorts as text
    ("summary", "TEXT"),
    ("service", "TEXT"),
    ("severity", "TEXT"),  # at opening
)
_SUMMARY_CHARS = 1024


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


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_ENTRY_COLUMNS = "day, sequence, workflow_key, opened_at, summary, service, severity"


def _entry(row: tuple[Any, ...]) -> IncidentEntry:
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


@contextmanager
def connect_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """One short-lived autocommit connection per call: activities run on many threads."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=30000")
        yield db
    finally:
        db.close()


def create_schema(path: Path, schema: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect_sqlite(path) as db:
        db.execute("PRAGMA journal_mode=WAL")  # readers (the API) never block the worker
        db.executescript(schema)


class Store:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "firewatch.db"
        create_schema(self.path, _SCHEMA)
        self._migrate()

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect_sqlite(self.path)

    def _migrate(self) -> None:
        """Add the listing columns to a data dir written before them (idempotent, and safe
        when the worker and the API open the same file at once)."""
        with self._connect() as db:
            if self._missing_columns(db):
                db.execute("BEGIN IMMEDIATE")
                try:
                    for name, kind in self._missing_columns(db):
                        db.execute(f"ALTER TABLE incident_numbers ADD COLUMN {name} {kind}")
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            db.execute(
                "CREATE INDEX IF NOT EXISTS incident_numbers_opened ON incident_numbers (opened_at)"
            )

    @staticmethod
    def _missing_columns(db: sqlite3.Connection) -> list[tuple[str, str]]:
        have = {row[1] for row in db.execute("PRAGMA table_info(incident_numbers)")}
        return [(name, kind) for name, kind in _INCIDENT_COLUMNS if name not in have]

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
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # serialises allocators across threads and processes
            try:
                row = db.execute(
                    "SELECT sequence FROM incident_numbers WHERE workflow_key = ?", (workflow_key,)
                ).fetchone()
                if row is None:
                    (last,) = db.execute(
                        "SELECT COALESCE(MAX(sequence), 0) FROM incident_numbers WHERE day = ?",
                        (day.isoformat(),),
                    ).fetchone()
                    row = (last + 1,)
                    db.execute(
                        "INSERT INTO incident_numbers (day, sequence, workflow_key,"
                        " opened_at, summary, service, severity) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            day.isoformat(),
                            row[0],
                            workflow_key,
                            _timestamp(opened_at) if opened_at else None,
                            summary[:_SUMMARY_CHARS] or None,
                            service or None,
                            severity or None,
                        ),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a cancelled call may already have ended it
                    db.execute("ROLLBACK")
                raise
        return int(row[0])

    def incident(self, incident_id: str) -> IncidentEntry | None:
        """The run that opened ``incident_id`` (None: not allocated in this data dir)."""
        parsed = parse_incident_id(incident_id)
        if parsed is None:
            return None
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM incident_numbers WHERE day = ? AND sequence = ?",
                (parsed[0].isoformat(), parsed[1]),
            ).fetchone()
        return _entry(row) if row else None

    def incidents(self, incident_ids: Iterable[str]) -> dict[str, IncidentEntry]:
        """Several incidents at once (one connection), by INC id; unknown ids are left out."""
        keys = {p for p in map(parse_incident_id, incident_ids) if p is not None}
        found: dict[str, IncidentEntry] = {}
        if not keys:
            return found
        with self._connect() as db:
            for day, sequence in keys:
                row = db.execute(
                    f"SELECT {_ENTRY_COLUMNS} FROM incident_numbers WHERE day = ? AND sequence = ?",
                    (day.isoformat(), sequence),
                ).fetchone()
                if row:
                    entry = _entry(row)
                    found[entry.incident_id] = entry
        return found

    def incident_for_run(self, workflow_id: str, run_id: str) -> str | None:
        """The INC id a run opened (None: the run opened none, e.g. it continued one)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT day, sequence FROM incident_numbers WHERE workflow_key = ?",
                (f"{workflow_id}#{run_id}",),
            ).fetchone()
        return format_incident_id(date.fromisoformat(row[0]), int(row[1])) if row else None

    def opened_bound(self, count: int, *, newest: bool = True) -> datetime | None:
        """Opening time of the ``count``-th newest (or oldest) incident; None if fewer."""
        order = "DESC" if newest else "ASC"
        with self._connect() as db:
            row = db.execute(
                "SELECT opened_at FROM incident_numbers WHERE opened_at IS NOT NULL"
                f" ORDER BY opened_at {order} LIMIT 1 OFFSET ?",
                (max(count, 1) - 1,),
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    # ---- outbox -----------------------------------------------------------------------

    def record_notification(self, fields: dict[str, Any]) -> bool:
        """Insert once per idempotency key. Returns False when the key was already there."""
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._connect() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO outbox ({columns}) VALUES ({marks})",
                tuple(fields.values()),
            )
            return cursor.rowcount == 1

    def notifications(self, incident_id: str | None = None, limit: int = 200) -> list[OutboxRow]:
        query = (
            "SELECT id, idempotency_key, incident_id, kind, recipient, channel, subject, text,"
            " scheduled_at, recorded_at, status FROM outbox"
        )
        args: tuple[Any, ...] = ()
        if incident_id:
            query += " WHERE incident_id = ?"
            args = (incident_id,)
        query += " ORDER BY id DESC LIMIT ?"
        with self._connect() as db:
            rows = db.execute(query, (*args, limit)).fetchall()
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


def dumps_detail(detail: dict[str, Any] | None) -> str | None:
    return json.dumps(detail) if detail else None
