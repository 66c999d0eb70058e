"""Markdown documents kept current on disk: incident tickets and post-mortem drafts."""

from __future__ import annotations

import os
import re
from pathlib import Path

from temporalio import activity

from activities.models import DocumentWritten, WriteDocument
from storage.records import IncidentRecords

_VERSION = re.compile(r"^<!-- firewatch-version: (\d+) -->$", re.MULTILINE)


class DocumentActivities:
    def __init__(self, data_dir: Path, records: IncidentRecords | None = None) -> None:
        self._root = data_dir
        self._records = records  # the incident records the reports read

    def path_for(self, kind: str, incident_id: str) -> Path:
        folder = "tickets" if kind == "ticket" else "postmortems"
        return self._root / folder / f"{incident_id}.md"

    @activity.defn(name="Write document")
    def write_document(self, request: WriteDocument) -> DocumentWritten:
        if request.record is not None and self._records is not None:
            self._records.save(request.record)  # an older version never replaces a newer one
        path = self.path_for(request.kind, request.incident_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            match = _VERSION.search(path.read_text(encoding="utf-8"))
            if match and int(match.group(1)) >= request.version:
                # A late retry of an older version: keep the newer document.
                return DocumentWritten(path=str(path), version=int(match.group(1)))
        body = f"{request.markdown.rstrip()}\n\n<!-- firewatch-version: {request.version} -->\n"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)  # atomic: readers never see half a ticket
        return DocumentWritten(path=str(path), version=request.version)
