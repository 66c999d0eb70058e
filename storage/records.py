"""Incident records (``domain.records``): written with each ticket version, read by reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update

from domain.records import IncidentRecord
from storage import dialects
from storage.database import Database, timestamp
from storage.schema import incident_records

_r = incident_records.c


class IncidentRecords:
    def __init__(self, database: Database) -> None:
        self.database = database

    def save(self, record: IncidentRecord) -> bool:
        """Insert or replace by INC id, unless the stored one is newer. True: written."""
        fields = {
            "incident_id": record.incident_id,
            "opened_at": timestamp(record.opened_at),
            "resolved_at": timestamp(record.resolved_at) if record.resolved_at else None,
            "severity": record.severity.value,
            "service": record.service,
            "version": record.version,
            "record": record.model_dump_json(),
        }
        with self.database.write() as db:
            inserted = db.execute(
                dialects.insert_ignoring_conflict(db, incident_records, fields, ["incident_id"])
            ).rowcount
            if inserted == 1:
                return True
            changed = db.execute(
                update(incident_records)
                .where(_r.incident_id == record.incident_id, _r.version <= record.version)
                .values(**fields)
            ).rowcount
        return bool(changed == 1)

    def get(self, incident_id: str) -> IncidentRecord | None:
        with self.database.read() as db:
            row = db.scalar(select(_r.record).where(_r.incident_id == incident_id))
        return IncidentRecord.model_validate_json(row) if row else None

    def overlapping(self, start: datetime, end: datetime) -> list[IncidentRecord]:
        """Incidents opened before ``end`` and not resolved before ``start`` (still open
        ones included): every incident that touches the period [start, end)."""
        lo, hi = timestamp(start), timestamp(end)
        query = (
            select(_r.record)
            .where(_r.opened_at < hi, or_(_r.resolved_at.is_(None), _r.resolved_at >= lo))
            .order_by(_r.opened_at)
        )
        with self.database.read() as db:
            rows = db.scalars(query).all()
        return [IncidentRecord.model_validate_json(r) for r in rows]

    def all(self) -> list[IncidentRecord]:
        with self.database.read() as db:
            rows = db.scalars(select(_r.record).order_by(_r.opened_at)).all()
        return [IncidentRecord.model_validate_json(r) for r in rows]

    def count(self) -> int:
        with self.database.read() as db:
            return int(db.scalar(select(func.count()).select_from(incident_records)) or 0)
