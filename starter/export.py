"""``firewatch export``: Firewatch's documents and incident records as files.

The database is the source of truth (issue 15); this writes what it holds in the layout
the data dir had before: ``tickets/INC-….md`` and ``postmortems/INC-….md``, byte for byte
the documents (version marker included), and ``incident_records.json``, every incident
record (``domain.records``) as JSON. Run it on any host that reaches the database.

Into a directory that already holds some of the files (the data dir, whose mirror the
worker writes), a file holding the same or a newer version is left as it is: an export
never puts an older document over a newer one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from activities.documents import write_file
from storage.database import Database
from storage.documents import Documents
from storage.records import IncidentRecords

RECORDS_FILE = "incident_records.json"


@dataclass(frozen=True)
class Exported:
    to: Path
    tickets: int
    postmortems: int
    records: int


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def export(database: Database, to: Path, now: datetime | None = None) -> Exported:
    """Write every document and the incident records under ``to`` (created if missing)."""
    to.mkdir(parents=True, exist_ok=True)
    counts = {"ticket": 0, "postmortem": 0}
    for doc in Documents(database).all():
        write_file(to, doc.kind, doc.incident_id, doc.version, doc.markdown)
        counts[doc.kind] = counts.get(doc.kind, 0) + 1
    records = IncidentRecords(database).all()
    body = {
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "records": [r.model_dump(mode="json") for r in records],
    }
    _write_atomic(to / RECORDS_FILE, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return Exported(
        to=to, tickets=counts["ticket"], postmortems=counts["postmortem"], records=len(records)
    )
