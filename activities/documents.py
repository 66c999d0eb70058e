"""Markdown documents kept current: incident tickets and post-mortem drafts.

The database holds them (``storage.documents``), whichever worker host wrote them. On the
embedded default (SQLite) they are also mirrored as files in the data dir, as before:
``tickets/INC-….md`` and ``postmortems/INC-….md`` (``FIREWATCH_DOCUMENT_MIRROR``).
``firewatch export`` writes the same files from the database on demand.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity

from activities.models import DocumentWritten, WriteDocument
from storage.database import Database, database_url
from storage.documents import FOLDERS, Document, Documents, relative_path
from storage.records import IncidentRecords

log = logging.getLogger(__name__)
_VERSION = re.compile(r"^<!-- firewatch-version: (\d+) -->$", re.MULTILINE)


def document_body(markdown: str, version: int) -> str:
    """The document as stored and as its file holds it: the markdown, then its version."""
    return f"{markdown.rstrip()}\n\n<!-- firewatch-version: {version} -->\n"


def file_version(path: Path) -> int | None:
    """The version a document file says it is (None: no file, or no marker)."""
    try:
        match = _VERSION.search(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return int(match.group(1)) if match else None


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    # Worker threads and processes on this host: the version check and the rename are one
    # step, so a slower older write never lands after a newer one. The lock is the folder's
    # own (flock on its descriptor): no lock file left in an export.
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_file(root: Path, kind: str, incident_id: str, version: int, body: str) -> Path:
    """Write ``body`` to its file under ``root`` unless the file holds ``version`` or newer."""
    path = root / relative_path(kind, incident_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(path.parent):
        have = file_version(path)
        if have is not None and have >= version:
            return path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body)
            os.replace(tmp, path)  # atomic: readers never see half a ticket
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return path


def _files(root: Path) -> Iterator[Document]:
    for kind, folder in FOLDERS.items():
        for path in sorted((root / folder).glob("INC-*.md")):
            text = path.read_text(encoding="utf-8")
            match = _VERSION.search(text)
            if match is None:
                continue  # not one of ours
            at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            yield Document(kind, path.stem, int(match.group(1)), text, at)


def import_files(root: Path, documents: Documents) -> int | None:
    """Once per database: an install's ticket and post-mortem files (written before the
    database held them) into it, so readers and ``firewatch export`` have them. None: no
    files, or imported before."""
    if not any((root / folder).is_dir() for folder in FOLDERS.values()):
        return None
    if documents.files_imported():
        return None
    return documents.import_files(_files(root))


def mirror_default(database: Database) -> bool:
    """``FIREWATCH_DOCUMENT_MIRROR``, else on for SQLite (one host) and off otherwise."""
    from activities.settings import get_settings

    setting = get_settings().document_mirror
    return setting if setting is not None else database.dialect == "sqlite"


class DocumentActivities:
    def __init__(
        self,
        data_dir: Path,
        records: IncidentRecords | None = None,
        *,
        documents: Documents | None = None,
        mirror: bool | None = None,
    ) -> None:
        self._root = data_dir
        self._records = records  # the incident records the reports read
        if documents is None:
            database = records.database if records is not None else None
            documents = Documents(database or Database.open(database_url(data_dir)))
        self.documents = documents
        self.mirror = mirror_default(documents.database) if mirror is None else mirror
        imported = import_files(data_dir, documents)  # at the worker's start, once
        if imported:
            log.info("imported %d document files from %s into the database", imported, data_dir)

    def path_for(self, kind: str, incident_id: str) -> Path:
        """The mirror file of a document (written only when mirroring)."""
        return self._root / relative_path(kind, incident_id)

    def _written(self, kind: str, incident_id: str, version: int) -> DocumentWritten:
        # The file when mirrored; else where `firewatch export` puts it (a relative path).
        path = str(self.path_for(kind, incident_id)) if self.mirror else None
        return DocumentWritten(path=path or relative_path(kind, incident_id), version=version)

    @activity.defn(name="Write document")
    def write_document(self, request: WriteDocument) -> DocumentWritten:
        if request.record is not None and self._records is not None:
            self._records.save(request.record)  # an older version never replaces a newer one
        kind, incident_id = request.kind, request.incident_id
        body = document_body(request.markdown, request.version)
        # The database first: the source of truth, whichever host runs this.
        stored = self.documents.save(kind, incident_id, request.version, body)
        if self.mirror:
            if stored != request.version:
                # A late retry of an older version: the mirror gets the newer document (it
                # may have missed it, e.g. a crash between the commit and the file write).
                newer = self.documents.get(kind, incident_id)
                if newer is not None:
                    write_file(self._root, kind, incident_id, newer.version, newer.markdown)
            else:
                write_file(self._root, kind, incident_id, stored, body)
        return self._written(kind, incident_id, stored)
