"""The worker's durable local store (SQLite in the data dir): outbox and incident numbers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

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
    workflow_key TEXT NOT NULL UNIQUE,
    PRIMARY KEY (day, sequence)
);
"""


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

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect_sqlite(self.path)

    # ---- incident numbers -------------------------------------------------------------

    def allocate_incident_number(self, day: date, workflow_key: str) -> int:
        """Next number for ``day``; the same ``workflow_key`` always gets the same number."""
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
                        "INSERT INTO incident_numbers (day, sequence, workflow_key)"
                        " VALUES (?, ?, ?)",
                        (day.isoformat(), row[0], workflow_key),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a cancelled call may already have ended it
                    db.execute("ROLLBACK")
                raise
        return int(row[0])

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
