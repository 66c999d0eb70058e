"""Documents in the database (storage.documents, activities.documents): the version guard,
the file mirror of the embedded default, and the mirror left off for a shared database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from activities.documents import DocumentActivities, document_body
from activities.models import WriteDocument
from activities.settings import get_settings
from storage.database import Database, sqlite_url
from storage.documents import Documents
from storage.records import IncidentRecords

INC = "INC-2026-11-29-001"


def _write(kind: str, version: int, text: str) -> WriteDocument:
    return WriteDocument(kind=kind, incident_id=INC, version=version, markdown=text)  # type: ignore[arg-type]


def test_an_older_version_never_replaces_a_newer_one(tmp_path: Path) -> None:
    docs = Documents(Database.open(sqlite_url(tmp_path)))
    assert docs.get("ticket", INC) is None
    assert docs.save("ticket", INC, 2, "two") == 2
    assert docs.save("ticket", INC, 1, "one") == 2  # a late retry: kept the newer one
    assert docs.save("ticket", INC, 2, "two again") == 2  # the same version: unchanged
    stored = docs.get("ticket", INC)
    assert stored is not None and (stored.version, stored.markdown) == (2, "two")
    assert docs.save("ticket", INC, 3, "three") == 3
    assert docs.save("postmortem", INC, 1, "draft") == 1  # another kind, its own row
    assert [(d.kind, d.version, d.markdown) for d in docs.all()] == [
        ("postmortem", 1, "draft"),
        ("ticket", 3, "three"),
    ]


def test_concurrent_writers_leave_the_newest(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    Database.open(url)  # migrated
    hosts = [Documents(Database(url)) for _ in range(2)]  # two engines, as on two hosts
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda v: hosts[v % 2].save("ticket", INC, v, f"v{v}"), range(1, 41)))
    stored = hosts[0].get("ticket", INC)
    assert stored is not None and (stored.version, stored.markdown) == (40, "v40")


def test_the_database_first_and_the_mirror_on_sqlite(tmp_path: Path) -> None:
    db = Database.open(sqlite_url(tmp_path))
    activities = DocumentActivities(tmp_path, IncidentRecords(db))
    assert activities.mirror  # the embedded default keeps the files
    written = activities.write_document(_write("ticket", 2, "# Ticket v2\n"))
    path = tmp_path / "tickets" / f"{INC}.md"
    assert written.path == str(path) and written.version == 2
    body = document_body("# Ticket v2", 2)
    assert path.read_text() == body == "# Ticket v2\n\n<!-- firewatch-version: 2 -->\n"
    stored = Documents(db).get("ticket", INC)
    assert stored is not None and stored.markdown == body

    late = activities.write_document(_write("ticket", 1, "# Ticket v1"))
    assert late.version == 2 and path.read_text() == body
    # A mirror file lost (or never written): a late retry puts the newest one back.
    path.unlink()
    assert activities.write_document(_write("ticket", 1, "# Ticket v1")).version == 2
    assert path.read_text() == body

    pm = activities.write_document(_write("postmortem", 1, "# Post-mortem"))
    assert pm.path == str(tmp_path / "postmortems" / f"{INC}.md")
    assert Path(pm.path).read_text() == document_body("# Post-mortem", 1)


def test_without_the_mirror_only_the_database_holds_them(tmp_path: Path) -> None:
    db = Database.open(sqlite_url(tmp_path))
    activities = DocumentActivities(tmp_path, IncidentRecords(db), mirror=False)
    written = activities.write_document(_write("ticket", 1, "# Ticket"))
    assert (written.path, written.version) == (f"tickets/{INC}.md", 1)
    assert not (tmp_path / "tickets").exists()
    # Another host (another engine on the same database) reads what this one wrote.
    other = Documents(Database(sqlite_url(tmp_path))).get("ticket", INC)
    assert other is not None and other.markdown == document_body("# Ticket", 1)


def test_the_mirror_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database.open(sqlite_url(tmp_path))
    monkeypatch.setenv("FIREWATCH_DOCUMENT_MIRROR", "0")
    assert get_settings().document_mirror is False
    assert not DocumentActivities(tmp_path, IncidentRecords(db)).mirror
    monkeypatch.delenv("FIREWATCH_DOCUMENT_MIRROR")
    assert DocumentActivities(tmp_path, IncidentRecords(db)).mirror  # SQLite: on by default
    # A shared database (PostgreSQL): off by default, one worker's disk is nobody's. (The
    # engine connects lazily: nothing is written here.)
    shared = Documents(Database("postgresql+psycopg://firewatch@127.0.0.1:1/firewatch"))
    assert not DocumentActivities(tmp_path, documents=shared).mirror
    monkeypatch.setenv("FIREWATCH_DOCUMENT_MIRROR", "1")
    assert DocumentActivities(tmp_path, documents=shared).mirror


def test_an_installs_document_files_are_imported_once(tmp_path: Path) -> None:
    db = Database.open(sqlite_url(tmp_path))
    older, newer = "INC-2026-11-01-001", "INC-2026-11-02-001"
    (tmp_path / "tickets").mkdir()
    (tmp_path / "postmortems").mkdir()
    files = {
        tmp_path / "tickets" / f"{older}.md": document_body("# Old ticket", 4),
        tmp_path / "tickets" / f"{newer}.md": document_body("# File version", 2),
        tmp_path / "postmortems" / f"{older}.md": document_body("# Old draft", 3),
        tmp_path / "tickets" / "notes.md": "someone's notes, not a document\n",
    }
    for path, text in files.items():
        path.write_text(text)
    docs = Documents(db)
    docs.save("ticket", newer, 5, document_body("# Database version", 5))  # already newer

    DocumentActivities(tmp_path, IncidentRecords(db))  # the worker's start
    assert [(d.kind, d.incident_id, d.version) for d in docs.all()] == [
        ("postmortem", older, 3),
        ("ticket", older, 4),
        ("ticket", newer, 5),  # the newer stays
    ]
    stored = docs.get("ticket", older)
    assert stored is not None and stored.markdown == document_body("# Old ticket", 4)
    # Once: a later start leaves the database to be the source of truth.
    (tmp_path / "tickets" / f"{older}.md").write_text(document_body("# Hand edit", 9))
    DocumentActivities(tmp_path, IncidentRecords(Database(sqlite_url(tmp_path))))
    again = docs.get("ticket", older)
    assert again is not None and again.version == 4
