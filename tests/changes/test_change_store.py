"""The change feed's storage: one row per (service, change_id), newest first, filters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.changes import Change, ChangeLink
from storage.database import Database
from storage.store import Store

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)  # SQLite and PostgreSQL, migrated
    try:
        yield store
    finally:
        store.database.close()


def change(change_id: str, *, service: str = "api", at: datetime = T0, **fields: Any) -> Change:
    values: dict[str, Any] = {
        "summary": f"Deploy {change_id}",
        "source": "api",
        "who": "alice",
        "received_at": T0 + timedelta(hours=1),
        **fields,
    }
    return Change(change_id=change_id, service=service, at=at, **values)


def test_a_change_round_trips_with_its_links_and_details(store: Store) -> None:
    sent = change(
        "v412",
        at=datetime(2026, 11, 28, 10, 30, 15, 250000, tzinfo=timezone(timedelta(hours=2))),
        integration="pagerduty",
        source="pagerduty",
        links=[ChangeLink(href="https://ci.example/412", text="build"), ChangeLink(href="x")],
        details={"sha": "3f9c2a1", "tests": {"passed": 812}, "note": "ünïcode"},
    )
    assert store.record_change(sent) is True
    [got] = store.changes()
    assert got == sent
    assert got.at == datetime(2026, 11, 28, 8, 30, 15, 250000, tzinfo=UTC)
    assert got.at.utcoffset() == timedelta(0)  # kept in UTC
    assert store.change("api", "v412") == sent
    assert store.change("api", "v413") is None
    assert store.change("web", "v412") is None


def test_times_are_stored_as_utc_iso_text(store: Store) -> None:
    store.record_change(change("v1", at=datetime(2026, 1, 31, 23, 0, tzinfo=UTC)))
    with store.database.read() as db:
        row = db.exec_driver_sql("SELECT at, received_at, links, details FROM changes").one()
    assert tuple(row) == (
        "2026-01-31T23:00:00.000000+00:00",
        "2026-11-28T10:00:00.000000+00:00",
        "[]",
        "{}",
    )


def test_a_repeat_is_refused_and_changes_nothing(store: Store) -> None:
    first = change("deploy-412", summary="Deploy v412")
    assert store.record_change(first) is True
    again = change("deploy-412", summary="Deploy v412 (re-sent)", who="bob", at=T0 + timedelta(1))
    assert store.record_change(again) is False
    assert store.changes() == [first]
    # The key is per service: the same id for another service is another change.
    other = change("deploy-412", service="web")
    assert store.record_change(other) is True
    assert {c.service for c in store.changes()} == {"api", "web"}


def test_newest_first_by_time_then_by_arrival(store: Store) -> None:
    store.record_change(change("old", at=T0 - timedelta(hours=2)))
    store.record_change(change("tie-first", at=T0))
    store.record_change(change("newest", at=T0 + timedelta(minutes=5)))
    store.record_change(change("tie-second", at=T0))
    # Reported late, but it happened first: ordered by when it happened.
    store.record_change(change("late-report", at=T0 - timedelta(days=1)))
    ids = [c.change_id for c in store.changes()]
    assert ids == ["newest", "tie-second", "tie-first", "old", "late-report"]


def test_filters_by_service_since_and_limit(store: Store) -> None:
    for n in range(5):
        store.record_change(change(f"api-{n}", at=T0 + timedelta(minutes=10 * n)))
        store.record_change(change(f"db-{n}", service="database", at=T0 + timedelta(minutes=n)))
    assert [c.change_id for c in store.changes(service="api", limit=2)] == ["api-4", "api-3"]
    # since is inclusive, and compared in UTC whatever the offset it is given in.
    since = (T0 + timedelta(minutes=20)).astimezone(timezone(timedelta(hours=-5)))
    assert [c.change_id for c in store.changes(service="api", since=since)] == [
        "api-4",
        "api-3",
        "api-2",
    ]
    assert [c.change_id for c in store.changes(since=T0 + timedelta(minutes=3))] == [
        "api-4",
        "api-3",
        "api-2",
        "api-1",
        "db-4",
        "db-3",
    ]
    assert store.changes(service="nope") == []
    assert store.changes(since=T0 + timedelta(days=1)) == []
    assert len(store.changes()) == 10
    assert store.changes(limit=0) == []


def test_a_second_store_on_the_same_database_sees_the_changes(store_url: str) -> None:
    """The API writes, the worker's runbook check reads: separate engines, one database."""
    writer, reader = Store(store_url), Store(Database(store_url))
    assert writer.database is not reader.database
    try:
        assert writer.record_change(change("v9")) is True
        assert [c.change_id for c in reader.changes(service="api")] == ["v9"]
        assert reader.record_change(change("v9")) is False
    finally:
        writer.database.close()
        reader.database.close()
