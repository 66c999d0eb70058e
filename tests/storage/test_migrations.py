"""Migrations: a fresh file, data dirs written by the code before them, concurrent start-up
(on SQLite and on PostgreSQL: ``database_url``).

The old schemas are the DDL the hand-written SQLite code ran (``activities/store.py`` and
``activities/channels/ledger.py`` before the storage layer), copied here verbatim.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.database import Database, sqlite_url
from storage.ledger import Ledger
from storage.migrate import MIGRATION_LOCK, current_revision, head_revision, upgrade
from storage.schema import metadata
from storage.store import Store
from tests.storage import processes

REPO = Path(__file__).resolve().parents[2]

OLD_OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    incident_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'sent',
    detail TEXT
);
CREATE INDEX IF NOT EXISTS outbox_incident ON outbox (incident_id);
"""
# incident_numbers as the first release created it (no listing columns).
OLD_NUMBERS_FIRST = """
CREATE TABLE IF NOT EXISTS incident_numbers (
    day TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    workflow_key TEXT NOT NULL UNIQUE,  -- "<workflow id>#<run id>" of the opening run
    PRIMARY KEY (day, sequence)
);
"""
# ... and as the last hand-written version left it (columns added by ALTER TABLE).
OLD_NUMBERS_LAST = (
    OLD_NUMBERS_FIRST
    + """
ALTER TABLE incident_numbers ADD COLUMN opened_at TEXT;
ALTER TABLE incident_numbers ADD COLUMN summary TEXT;
ALTER TABLE incident_numbers ADD COLUMN service TEXT;
ALTER TABLE incident_numbers ADD COLUMN severity TEXT;
CREATE INDEX IF NOT EXISTS incident_numbers_opened ON incident_numbers (opened_at);
"""
)
# The ledger's tables: only written when a real channel was configured.
OLD_LEDGER = """
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
OLD_ROWS = """
INSERT INTO outbox (idempotency_key, incident_id, workflow_id, kind, recipient, channel,
    subject, text, scheduled_at, recorded_at)
VALUES ('INC-2026-03-02-001:page-1:carol:outbox', 'INC-2026-03-02-001', 'incident/direct/old',
    'page', 'carol', 'outbox', 'P1 api', 'API down', '2026-03-02T10:00:00+00:00',
    '2026-03-02T10:00:01.000001+00:00');
INSERT INTO incident_numbers (day, sequence, workflow_key)
VALUES ('2026-03-02', 1, 'incident/direct/old#run-old');
"""
OLD_LEDGER_ROWS = """
INSERT INTO channel_deliveries VALUES ('INC-2026-03-02-001:page-1:carol:sms',
    'INC-2026-03-02-001', 'sms', '+15550100', 'sent', 'SM1', NULL, 1,
    '2026-03-02T10:00:00.5+00:00', '2026-03-02T10:00:01+00:00');
INSERT INTO channel_state VALUES ('slack:message:INC-2026-03-02-001', '"1700000000.000100"',
    '2026-03-02T10:00:02+00:00');
"""

OLD_DATA_DIRS = {
    # first release, outbox only (no channels configured)
    "first-release": OLD_OUTBOX + OLD_NUMBERS_FIRST + OLD_ROWS,
    # the last hand-written schema, no channels configured
    "listing-columns": OLD_OUTBOX + OLD_NUMBERS_LAST + OLD_ROWS,
    # the last hand-written schema with Slack/Twilio configured: every table
    "with-ledger": OLD_OUTBOX + OLD_NUMBERS_LAST + OLD_LEDGER + OLD_ROWS + OLD_LEDGER_ROWS,
}


def schema_diff(db: Database) -> list[object]:
    """What Alembic's autogenerate would change to make the file match storage.schema.

    Leaves out NOT NULL on a primary key column: the old DDL declared ``id INTEGER PRIMARY
    KEY`` and ``name TEXT PRIMARY KEY`` without it, and SQLite reports such a column as
    nullable; nothing ever wrote NULL there (the rowid alias is assigned, keys are given).
    """
    primary = {(t.name, c.name) for t in metadata.tables.values() for c in t.primary_key}
    with db.read() as conn:
        context = MigrationContext.configure(conn, opts={"compare_server_default": True})
        diff = compare_metadata(context, metadata)
    return [
        d
        for d in diff
        if not (
            isinstance(d, list)
            and len(d) == 1
            and d[0][0] == "modify_nullable"
            and (d[0][2], d[0][3]) in primary
        )
    ]


def test_a_fresh_file_gets_the_whole_schema(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path))
    assert upgrade(db) is True
    assert upgrade(db) is False  # at head: nothing to do
    with db.read() as conn:
        assert current_revision(conn) == head_revision()
    assert schema_diff(db) == []
    with sqlite3.connect(tmp_path / "firewatch.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"outbox", "incident_numbers", "channel_deliveries", "channel_state"} <= tables


def test_a_fresh_postgresql_database_gets_the_whole_schema(postgres_url: str) -> None:
    """The same migrations on PostgreSQL (transactional DDL): the same tables, columns and
    indexes as ``storage.schema`` declares."""
    db = Database(postgres_url)
    assert upgrade(db) is True
    assert upgrade(db) is False
    with db.read() as conn:
        assert current_revision(conn) == head_revision()
        tables = set(inspect(conn).get_table_names())
    assert schema_diff(db) == []
    assert set(metadata.tables) | {"alembic_version"} == tables


@pytest.mark.parametrize("old", sorted(OLD_DATA_DIRS))
def test_a_data_dir_written_by_the_old_code_is_adopted(tmp_path: Path, old: str) -> None:
    with sqlite3.connect(tmp_path / "firewatch.db") as raw:
        raw.executescript(OLD_DATA_DIRS[old])
    store = Store(tmp_path)
    db = store.database
    with db.read() as conn:
        assert current_revision(conn) == head_revision()
    assert schema_diff(db) == []  # same tables, columns, indexes as a fresh file
    # Old rows are still there and read as before.
    entry = store.incident("INC-2026-03-02-001")
    assert entry is not None
    assert (entry.workflow_id, entry.run_id, entry.summary) == (
        "incident/direct/old",
        "run-old",
        None,
    )
    [page] = store.notifications("INC-2026-03-02-001")
    assert (page.kind, page.recipient, page.status) == ("page", "carol", "sent")
    # New rows continue the old ones.
    at = datetime(2026, 3, 2, 11, tzinfo=UTC)
    number = store.allocate_incident_number(date(2026, 3, 2), "w#new", opened_at=at, summary="s")
    assert number == 2
    assert store.opened_bound(1) == at
    assert store.record_notification(
        {
            "idempotency_key": "INC-2026-03-02-002:page-1:dave:outbox",
            "incident_id": "INC-2026-03-02-002",
            "workflow_id": "w",
            "kind": "page",
            "recipient": "dave",
            "channel": "outbox",
            "subject": "s",
            "text": "t",
            "scheduled_at": at.isoformat(),
            "recorded_at": at.isoformat(),
        }
    )
    assert [n.id for n in store.notifications()] == [1, 2]
    ledger = Ledger(db)
    if old == "with-ledger":
        row = ledger.get("INC-2026-03-02-001:page-1:carol:sms")
        assert row is not None and (row.status, row.provider_id) == ("sent", "SM1")
        assert ledger.value("slack:message:INC-2026-03-02-001") == "1700000000.000100"
    ledger.set_value("k", {"a": 1})
    assert ledger.value("k") == {"a": 1}


def test_migrations_run_inside_their_lock(database_url: str) -> None:
    """A process that finds the database behind takes the migration lock (SQLite: the write
    lock; PostgreSQL: an advisory lock), then looks again: while another holds it, it
    waits, and then finds nothing left to do."""
    url = database_url
    first = Database(url)
    upgrade(first)
    with first.write() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")  # as if a newer release started
    holder = Database(url)
    results: list[bool] = []
    with holder.write(lock=MIGRATION_LOCK) as conn:  # someone else is migrating
        thread = threading.Thread(target=lambda: results.append(upgrade(Database(url))))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the lock, not failing
        conn.exec_driver_sql(f"INSERT INTO alembic_version VALUES ('{head_revision()}')")
    thread.join(10)
    assert results == [False]


def _upgrade_in_process(url: str, barrier: Any, out: Any) -> None:
    try:
        db = Database(url)
        barrier.wait()
        out.put(("ok", upgrade(db)))
    except BaseException as err:  # pragma: no cover - reported by the test
        out.put(("error", repr(err)))


def test_several_processes_starting_at_once_on_a_fresh_database(database_url: str) -> None:
    """The worker, the API and `make up` migrate at start-up: one does, the others see head."""
    ctx = processes.context()
    url = database_url
    count = 4
    barrier = ctx.Barrier(count)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_upgrade_in_process, args=(url, barrier, out)) for _ in range(count)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert sorted(results) == [("ok", False)] * (count - 1) + [("ok", True)]
    db = Database(url)
    with db.read() as conn:
        assert current_revision(conn) == head_revision()
    assert schema_diff(db) == []


def _open_fresh_files_in_step(paths: list[str], barrier: Any, out: Any) -> None:
    failures = []
    for path in paths:
        barrier.wait()
        try:
            with Database(f"sqlite:///{path}").read() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as err:  # pragma: no cover - reported by the test
            failures.append(repr(err))
    out.put(failures)


def test_processes_opening_a_fresh_sqlite_file_together_all_get_in(tmp_path: Path) -> None:
    """Switching a fresh file to WAL fails at once, without waiting, while another
    connection holds a lock. Four processes opening 20 fresh files in step hit that in
    about a third of the files unless the switch is retried."""
    ctx = processes.context()
    count, rounds = 4, 20
    paths = [str(tmp_path / f"fresh-{n}.db") for n in range(rounds)]
    barrier = ctx.Barrier(count)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_open_fresh_files_in_step, args=(paths, barrier, out))
        for _ in range(count)
    ]
    for proc in procs:
        proc.start()
    failures = [failure for _ in procs for failure in out.get(timeout=120)]
    for proc in procs:
        proc.join(30)
    assert failures == []
    for path in paths:
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_several_engines_in_threads_starting_at_once(database_url: str) -> None:
    url = database_url
    count = 6
    barrier = threading.Barrier(count)
    results: list[bool] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            db = Database(url)  # its own engine and connections, like another process
            barrier.wait()
            results.append(upgrade(db))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False] * (count - 1) + [True]


def test_the_alembic_command_line_uses_the_project_config(tmp_path: Path) -> None:
    """`alembic` run from the repo reads [tool.alembic] in pyproject.toml, and the models
    and the migrations agree (`alembic check`: autogenerate finds nothing to add). SQLite
    only, for time: on PostgreSQL the same comparison runs in
    ``test_a_fresh_postgresql_database_gets_the_whole_schema``."""
    alembic = [sys.executable, "-m", "alembic"]
    url = f"url={sqlite_url(tmp_path)}"
    heads = subprocess.run(
        [*alembic, "heads"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert f"{head_revision()} (head)" in heads.stdout
    subprocess.run([*alembic, "-x", url, "upgrade", "head"], cwd=REPO, check=True)
    check = subprocess.run([*alembic, "-x", url, "check"], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
