"""``firewatch export``: every document from the database as its file (the same bytes the
mirror writes), and the incident records as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from activities.documents import DocumentActivities
from activities.models import WriteDocument
from domain.records import IncidentRecord
from starter import cli
from storage.database import Database, sqlite_url
from storage.records import IncidentRecords
from tests.reports.seeded import rec

A, B = "INC-2026-11-03-001", "INC-2026-11-10-001"


def _seed(data: Path) -> tuple[DocumentActivities, list[IncidentRecord]]:
    db = Database.open(sqlite_url(data))
    records = [
        rec(A, "P1", "checkout", "11-03 14:00", 5, 10, 120),
        rec(B, "P2", "search", "11-10 02:30", None, None, None),
    ]
    # As a worker host without the mirror writes them: into the database only.
    docs = DocumentActivities(data, IncidentRecords(db), mirror=False)
    for version, record in enumerate(records, start=1):
        docs.write_document(
            WriteDocument(
                kind="ticket",
                incident_id=record.incident_id,
                version=version,
                markdown=f"# {record.incident_id}\n\nSummary: {record.summary} ✓\n",
                record=record,
            )
        )
    docs.write_document(
        WriteDocument(kind="ticket", incident_id=A, version=7, markdown=f"# {A}\n\nNewer\n")
    )
    docs.write_document(
        WriteDocument(kind="postmortem", incident_id=A, version=2, markdown="# Post-mortem\n")
    )
    return docs, records


def test_export_writes_what_the_mirror_would(tmp_path: Path) -> None:
    data = tmp_path / "data"
    docs, records = _seed(data)
    assert not (data / "tickets").exists()  # nothing on disk so far

    out = tmp_path / "out"
    runner = CliRunner()
    env = {"FIREWATCH_DATA_DIR": str(data), "FIREWATCH_DATABASE_URL": None}
    result = runner.invoke(cli.app, ["export", "--to", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Exported 2 tickets, 1 post-mortems and 2 incident records to {out}\n"
    )
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "incident_records.json",
        f"postmortems/{A}.md",
        f"tickets/{A}.md",
        f"tickets/{B}.md",
    ]
    # Byte for byte what the SQLite mirror writes for the same documents.
    mirror = tmp_path / "mirror"
    mirrored = DocumentActivities(mirror, IncidentRecords(docs.documents.database), mirror=True)
    for kind, inc in (("ticket", A), ("ticket", B), ("postmortem", A)):
        stored = docs.documents.get(kind, inc)
        assert stored is not None
        folder = "tickets" if kind == "ticket" else "postmortems"
        exported = (out / folder / f"{inc}.md").read_bytes()
        assert exported == stored.markdown.encode()
        mirrored.write_document(
            WriteDocument(
                kind=kind,  # type: ignore[arg-type]
                incident_id=inc,
                version=stored.version,
                markdown=stored.markdown.rsplit("\n\n<!--", 1)[0],
            )
        )
        assert (mirror / folder / f"{inc}.md").read_bytes() == exported
    assert (
        (out / "tickets" / f"{A}.md")
        .read_text()
        .endswith("Newer\n\n<!-- firewatch-version: 7 -->\n")
    )
    dumped = json.loads((out / "incident_records.json").read_text())
    assert [IncidentRecord.model_validate(r) for r in dumped["records"]] == records

    # Into the data dir by default, as --json; run again, it changes nothing.
    first = runner.invoke(cli.app, ["export", "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {
        "to": str(data),
        "tickets": 2,
        "postmortems": 1,
        "records": 2,
    }
    assert (data / "tickets" / f"{B}.md").read_bytes() == (out / "tickets" / f"{B}.md").read_bytes()
    again = runner.invoke(cli.app, ["export"], env=env)
    assert again.exit_code == 0, again.output


def test_export_never_puts_an_older_document_over_a_newer_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _seed(data)
    newer = data / "tickets" / f"{A}.md"
    newer.parent.mkdir(parents=True)
    newer.write_text("# written by the worker just now\n\n<!-- firewatch-version: 8 -->\n")
    env = {"FIREWATCH_DATA_DIR": str(data), "FIREWATCH_DATABASE_URL": None}
    result = CliRunner().invoke(cli.app, ["export"], env=env)
    assert result.exit_code == 0, result.output
    assert newer.read_text().startswith("# written by the worker just now")


def test_export_before_the_first_run(tmp_path: Path) -> None:
    env = {"FIREWATCH_DATA_DIR": str(tmp_path), "FIREWATCH_DATABASE_URL": None}
    result = CliRunner().invoke(cli.app, ["export"], env=env)
    assert result.exit_code == 1
    assert "no database in" in result.output and "make up" in result.output
    assert not (tmp_path / "firewatch.db").exists()
