"""Ticket edits made after an incident's workflow closed, in the order they were made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from domain.incident import TicketEdit
from storage.database import Database, timestamp
from storage.schema import ticket_edits

_t = ticket_edits.c


class TicketEdits:
    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, incident_id: str, edit: TicketEdit, at: datetime) -> int:
        """Store one edit; returns its number (unique across incidents)."""
        with self.database.write() as db:
            number = db.execute(
                insert(ticket_edits)
                .values(
                    incident_id=incident_id,
                    at=timestamp(at),
                    edit=edit.model_dump_json(exclude_none=True),
                )
                .returning(_t.id)
            ).scalar_one()
        return int(number)

    def for_incident(self, incident_id: str) -> list[tuple[datetime, TicketEdit]]:
        with self.database.read() as db:
            rows = db.execute(
                select(_t.at, _t.edit).where(_t.incident_id == incident_id).order_by(_t.id)
            ).all()
        return [(datetime.fromisoformat(at), TicketEdit.model_validate_json(e)) for at, e in rows]
