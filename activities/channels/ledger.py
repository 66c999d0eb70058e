"""Idempotency records for real deliveries, next to the outbox in the worker's SQLite file.

One row per channel key (``incident:step:recipient:channel``):

* ``pending``  written BEFORE the provider is called. Found by a later attempt, it means
  "the outcome is unknown" (the worker died, or the call timed out): that attempt asks
  the provider whether the message exists before sending again.
* ``unknown``  the call ended without a clear answer (5xx, timeout): ask the provider first.
* ``retry``    the provider certainly did not take it (429, refused connection): send again.
* ``sent``     written AFTER the call, with the provider's id. Never sent again.
* ``failed``   permanent failure; the reason is kept for the timeline.

``channel_state`` keeps small facts about incidents on the providers: the #incidents
message's ts, the war-room channel, who has been invited, resolved channel ids.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from activities.store import connect_sqlite, create_schema

LedgerStatus = Literal["pending", "unknown", "retry", "sent", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_deliveries (
    idempotency_key TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    provider_id TEXT,
    detail TEXT,
    tries INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS channel_deliveries_incident ON channel_deliveries (incident_id);
CREATE TABLE IF NOT EXISTS channel_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class LedgerRow:
    idempotency_key: str
    incident_id: str
    channel: str
    address: str
    status: LedgerStatus
    provider_id: str | None
    detail: str | None
    tries: int
    created_at: datetime
    updated_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        create_schema(db_path, _SCHEMA)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect_sqlite(self.path)

    # ---- deliveries ---------------------------------------------------------------------

    def get(self, key: str) -> LedgerRow | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT idempotency_key, incident_id, channel, address, status, provider_id,"
                " detail, tries, created_at, updated_at FROM channel_deliveries"
                " WHERE idempotency_key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return LedgerRow(
            idempotency_key=row[0],
            incident_id=row[1],
            channel=row[2],
            address=row[3],
            status=row[4],
            provider_id=row[5],
            detail=row[6],
            tries=row[7],
            created_at=datetime.fromisoformat(row[8]),
            updated_at=datetime.fromisoformat(row[9]),
        )

    def begin(self, key: str, *, incident_id: str, channel: str, address: str) -> None:
        """Record that a call is about to go out (the 'before' record)."""
        now = _now().isoformat()
        with self._connect() as db:
            db.execute(
                "INSERT INTO channel_deliveries (idempotency_key, incident_id, channel, address,"
                " status, tries, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 1, ?, ?)"
                " ON CONFLICT (idempotency_key) DO UPDATE SET status = 'pending',"
                " tries = tries + 1, updated_at = excluded.updated_at"
                " WHERE channel_deliveries.status IN ('pending', 'unknown', 'retry')",
                (key, incident_id, channel, address, now, now),
            )

    def finish(
        self,
        key: str,
        status: LedgerStatus,
        *,
        provider_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The 'after' record: sent (with the provider's id), failed, or retry."""
        with self._connect() as db:
            db.execute(
                "UPDATE channel_deliveries SET status = ?, provider_id = COALESCE(?, provider_id),"
                " detail = ?, updated_at = ? WHERE idempotency_key = ? AND status != 'sent'",
                (status, provider_id, detail, _now().isoformat(), key),
            )

    def rows(self, incident_id: str) -> list[LedgerRow]:
        with self._connect() as db:
            keys = [
                r[0]
                for r in db.execute(
                    "SELECT idempotency_key FROM channel_deliveries WHERE incident_id = ?"
                    " ORDER BY created_at",
                    (incident_id,),
                )
            ]
        return [row for key in keys if (row := self.get(key)) is not None]

    # ---- small facts ----------------------------------------------------------------------

    def value(self, name: str) -> Any:
        with self._connect() as db:
            row = db.execute("SELECT value FROM channel_state WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_value(self, name: str, value: Any) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO channel_state (name, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (name, json.dumps(value), _now().isoformat()),
            )
