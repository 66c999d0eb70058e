"""Markdown documents (tickets, post-mortem drafts): the source of truth, by kind and INC id.

``save`` is one atomic version-guarded upsert: a row is inserted, or replaced only when the
stored version is older, so a late retry of an older write never replaces a newer document
(on both databases, with no read-then-write race between worker hosts).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, select
from sqlalchemy.sql.dml import Insert

from storage import dialects
from storage.database import Database, timestamp
from storage.schema import documents, state_versions

_d = documents.c
_v = state_versions.c

FILES_IMPORTED = "documents_files_imported"  # the state_versions row: the one import is done

Kind = Literal["ticket", "postmortem"]
KINDS: tuple[Kind, ...] = ("ticket", "postmortem")
FOLDERS: dict[str, str] = {"ticket": "tickets", "postmortem": "postmortems"}


def relative_path(kind: str, incident_id: str) -> str:
    """Where the document goes in a data dir or an export: ``tickets/INC-….md``."""
    return f"{FOLDERS[kind]}/{incident_id}.md"


@dataclass(frozen=True)
class Document:
    kind: str
    incident_id: str
    version: int
    markdown: str
    updated_at: datetime

    @property
    def relative_path(self) -> str:
        return relative_path(self.kind, self.incident_id)


def _guarded_upsert(db: Connection, fields: dict[str, Any]) -> Insert:
    """Insert, or replace the stored document only when it is an older version."""
    return dialects.upsert(
        db,
        documents,
        fields,
        ["kind", "incident_id"],
        {
            "version": lambda ex: ex.version,
            "markdown": lambda ex: ex.markdown,
            "updated_at": lambda ex: ex.updated_at,
        },
        where=_d.version < fields["version"],
    )


class Documents:
    def __init__(self, database: Database) -> None:
        self.database = database

    def save(
        self,
        kind: str,
        incident_id: str,
        version: int,
        markdown: str,
        at: datetime | None = None,
    ) -> int:
        """Store ``markdown`` as ``version`` unless a newer (or the same) version is stored.

        Returns the version stored afterwards: ``version`` if this write won, else the
        newer one already there.
        """
        if kind not in FOLDERS:
            raise ValueError(f"unknown document kind {kind!r}")
        fields = {
            "kind": kind,
            "incident_id": incident_id,
            "version": version,
            "markdown": markdown,
            "updated_at": timestamp(at or datetime.now(UTC)),
        }
        with self.database.write() as db:
            db.execute(_guarded_upsert(db, fields))
            stored = db.scalar(
                select(_d.version).where(_d.kind == kind, _d.incident_id == incident_id)
            )
        return int(stored or 0)

    def files_imported(self) -> bool:
        with self.database.read() as db:
            return db.scalar(select(_v.version).where(_v.name == FILES_IMPORTED)) is not None

    def import_files(self, found: Iterable[Document]) -> int | None:
        """Once per database: documents written as files before the database held them, in
        one transaction, each version-guarded like ``save``. None: imported before."""
        count = 0
        with self.database.write(lock=FILES_IMPORTED) as db:
            if db.scalar(select(_v.version).where(_v.name == FILES_IMPORTED)) is not None:
                return None
            for doc in found:
                if doc.kind not in FOLDERS:
                    continue
                fields = {
                    "kind": doc.kind,
                    "incident_id": doc.incident_id,
                    "version": doc.version,
                    "markdown": doc.markdown,
                    "updated_at": timestamp(doc.updated_at),
                }
                db.execute(_guarded_upsert(db, fields))
                count += 1
            db.execute(
                dialects.insert_ignoring_conflict(
                    db, state_versions, {"name": FILES_IMPORTED, "version": 1}, ["name"]
                )
            )
        return count

    def get(self, kind: str, incident_id: str) -> Document | None:
        with self.database.read() as db:
            row = db.execute(
                select(documents).where(_d.kind == kind, _d.incident_id == incident_id)
            ).first()
        if row is None:
            return None
        return Document(
            kind=row.kind,
            incident_id=row.incident_id,
            version=row.version,
            markdown=row.markdown,
            updated_at=datetime.fromisoformat(row.updated_at),
        )

    def all(self, batch: int = 500) -> Iterator[Document]:
        """Every document, by kind and INC id, read in batches (an export of years)."""
        after: tuple[str, str] = ("", "")
        while True:
            query = (
                select(documents)
                .where((_d.kind > after[0]) | ((_d.kind == after[0]) & (_d.incident_id > after[1])))
                .order_by(_d.kind, _d.incident_id)
                .limit(batch)
            )
            with self.database.read() as db:
                rows = db.execute(query).all()
            for row in rows:
                yield Document(
                    kind=row.kind,
                    incident_id=row.incident_id,
                    version=row.version,
                    markdown=row.markdown,
                    updated_at=datetime.fromisoformat(row.updated_at),
                )
            if len(rows) < batch:
                return
            after = (rows[-1].kind, rows[-1].incident_id)
