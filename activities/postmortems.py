"""The post-mortem's rows in the database (``storage.postmortems``), written at each change."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity

from domain.postmortem import PostmortemProgress
from storage.database import Database
from storage.postmortems import Postmortems, Snapshot


class RecordPostmortem(BaseModel):
    incident_id: str
    workflow_id: str
    severity: str
    service: str
    summary: str
    resolved_at: datetime | None
    timezone: str
    version: int  # snapshots in order: an older retry never overwrites a newer one
    state: PostmortemProgress  # the workflow's state: only these fields are sent
    at: datetime


class PostmortemActivities:
    def __init__(self, db: Database) -> None:
        self._rows = Postmortems(db)

    @activity.defn(name="Record post-mortem")
    def record_postmortem(self, request: RecordPostmortem) -> bool:
        return self._rows.save(
            Snapshot(
                incident_id=request.incident_id,
                workflow_id=request.workflow_id,
                version=request.version,
                severity=request.severity,
                service=request.service,
                summary=request.summary,
                resolved_at=request.resolved_at,
                timezone=request.timezone,
                progress=request.state,
                at=request.at,
            )
        )
