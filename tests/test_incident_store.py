"""The incident id store as the INC id -> workflow run mapping, on a real SQLite file and
on PostgreSQL (``store_url``).

Includes a data dir written before the listing columns existed (`make up`'s `.data/`
from an earlier version), opened by the worker and the API at the same time.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from activities.store import Store

DAY = date(2026, 3, 3)
T0 = datetime(2026, 3, 3, 2, 14, 7, 123456, tzinfo=UTC)

# incident_numbers as the first release created it.
OLD_SCHEMA = """
CREATE TABLE incident_numbers (
    day TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    workflow_key TEXT NOT NULL UNIQUE,
    PRIMARY KEY (day, sequence)
);
INSERT INTO incident_numbers VALUES ('2026-03-02', 1, 'incident/direct/old-key#run-old');
"""


def test_allocation_records_the_run_and_the_listing_fields(store_url: str) -> None:
    store = Store(store_url)
    number = store.allocate_incident_number(
        DAY,
        "incident/alertmanager/a#b#run-1",  # '#' in the workflow id: the run id is last
        opened_at=T0,
        summary="API p99 > 5s",
        service="api",
        severity="P1",
    )
    assert number == 1
    entry = store.incident("INC-2026-03-03-001")
    assert entry is not None
    assert (entry.workflow_id, entry.run_id) == ("incident/alertmanager/a#b", "run-1")
    assert (entry.opened_at, entry.summary, entry.service, entry.severity) == (
        T0,
        "API p99 > 5s",
        "api",
        "P1",
    )
    # A retried allocation (same run) gets the same number and keeps the first row.
    again = store.allocate_incident_number(
        DAY, "incident/alertmanager/a#b#run-1", opened_at=T0 + timedelta(seconds=5)
    )
    assert again == 1 and store.incident("INC-2026-03-03-001") == entry
    assert store.incident_for_run("incident/alertmanager/a#b", "run-1") == "INC-2026-03-03-001"
    assert store.incident_for_run("incident/alertmanager/a#b", "run-2") is None
    assert store.incident("INC-2026-03-03-002") is None
    assert store.incident("not-an-id") is None


def test_opened_bound_and_batch_lookup(store_url: str) -> None:
    store = Store(store_url)
    for n in range(5):
        store.allocate_incident_number(
            DAY, f"incident/direct/k{n}#r{n}", opened_at=T0 + timedelta(minutes=n), summary=f"s{n}"
        )
    store.allocate_incident_number(DAY, "incident/direct/no-time#r")  # pre-listing style row
    assert store.opened_bound(1) == T0 + timedelta(minutes=4)
    assert store.opened_bound(2) == T0 + timedelta(minutes=3)
    assert store.opened_bound(5) == T0
    assert store.opened_bound(6) is None  # rows without a time are not counted
    assert store.opened_bound(1, newest=False) == T0
    assert store.opened_bound(4, newest=False) == T0 + timedelta(minutes=3)
    found = store.incidents(["INC-2026-03-03-002", "INC-2026-03-03-006", "INC-2026-03-03-099"])
    assert {k: v.summary for k, v in found.items()} == {
        "INC-2026-03-03-002": "s1",
        "INC-2026-03-03-006": None,
    }
    assert store.incidents([]) == {}


def test_a_data_dir_from_before_the_listing_columns(tmp_path: Path) -> None:
    path = tmp_path / "firewatch.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(tmp_path)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    # The worker and the API open the same file at once: one migrates, neither fails.
    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Store(tmp_path)
    old = store.incident("INC-2026-03-02-001")
    assert old is not None
    assert (old.workflow_id, old.run_id, old.summary, old.opened_at) == (
        "incident/direct/old-key",
        "run-old",
        None,
        None,
    )
    assert (
        store.allocate_incident_number(
            date(2026, 3, 2), "incident/direct/new#run-new", opened_at=T0, summary="after"
        )
        == 2
    )
    new = store.incident("INC-2026-03-02-002")
    assert new is not None and new.summary == "after" and new.opened_at == T0
    with sqlite3.connect(path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list(incident_numbers)")}
    assert "incident_numbers_opened" in indexes
