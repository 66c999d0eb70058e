"""Every storage class on both back ends (``store_url``): schedules, maintenance windows,
handoff notes and integrations, ticket edits, incident records, the outbox, mitigation runs.
Their behaviour is tested in depth elsewhere, through Temporal; here each one's queries run on
PostgreSQL as on SQLite (types, RETURNING, ON CONFLICT, ordering of text timestamps).

Also: plain ``postgresql://`` URLs, concurrent first attempts on PostgreSQL, and what the
test cluster does on a machine without PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.incident import TicketEdit
from domain.maintenance import NewWindow
from domain.policy import Override, Role
from storage.database import Database, normalise_url
from storage.handoffs import Handoffs
from storage.maintenance import MaintenanceWindows
from storage.records import IncidentRecords
from storage.schedules import Schedules
from storage.store import Store
from storage.ticket_edits import TicketEdits
from tests import postgres
from tests.reports.seeded import rec
from tests.storage.locks import at_once

T0 = datetime(2026, 11, 28, 9, 0, 0, 123456, tzinfo=UTC)


def test_schedules_maintenance_handoffs_and_ticket_edits(store_url: str) -> None:
    db = Store(store_url).database
    schedules = Schedules(db)
    swap = [
        Override(role=Role.PRIMARY, person="bob", start=T0, end=T0 + timedelta(days=1)),
        Override(role=Role.SECONDARY, person="alice", start=T0, end=T0 + timedelta(days=1)),
    ]
    made = schedules.add(lambda active: swap, actor="carol", now=T0 - timedelta(hours=1))
    assert [(o.person, o.start) for o in made] == [("bob", T0), ("alice", T0)]
    assert made[0].swap_id and made[0].swap_id == made[1].swap_id
    assert [o.id for o in schedules.active(T0)] == [o.id for o in made]
    assert {o.person for o in schedules.covering(T0 + timedelta(hours=1))} == {"bob", "alice"}
    assert len(schedules.remove(made[0].id, actor="carol")) == 2  # both halves of the swap
    assert schedules.active(T0) == []
    assert [e.action for e in schedules.audit()] == ["removed"] * 2 + ["swapped"] * 2

    windows = MaintenanceWindows(db)
    window = windows.add(
        NewWindow(
            service="api",
            starts_at=T0,
            ends_at=T0 + timedelta(hours=2),
            reason="db upgrade",
            created_by="carol",
        ),
        T0,
    )
    assert windows.get(window.id) == window
    assert windows.active_for("api", T0 + timedelta(minutes=5)) == window
    assert windows.active_for("web", T0 + timedelta(minutes=5)) is None
    ended = windows.end(window.id, "dave", T0 + timedelta(minutes=30))
    assert ended is not None and ended.ended_by == "dave"
    assert windows.end(window.id, "erin", T0 + timedelta(minutes=31)) is None  # ended once
    assert windows.list(now=T0 + timedelta(hours=1)) == []
    assert windows.list(now=T0, include_past=True) == [ended]

    handoffs = Handoffs(db)
    note = handoffs.add_note("alice", "watch the api", at=T0)
    assert handoffs.notes("alice", T0 - timedelta(hours=1), T0) == [note]
    assert handoffs.touch_integration("alertmanager", at=T0)
    assert handoffs.touch_integration("alertmanager", at=T0 - timedelta(hours=1))  # not back
    assert handoffs.integrations_seen() == {"alertmanager": T0}

    edits = TicketEdits(db)
    first = edits.add("INC-2026-11-28-001", TicketEdit(by="bob", user_impact="slow"), T0)
    second = edits.add("INC-2026-11-28-001", TicketEdit(by="bob", data_loss=False), T0)
    assert second > first
    assert [
        e.model_dump(exclude_none=True) for _, e in edits.for_incident("INC-2026-11-28-001")
    ] == [
        {"by": "bob", "user_impact": "slow"},
        {"by": "bob", "data_loss": False},
    ]


def test_incident_records_outbox_and_mitigation_runs(store_url: str) -> None:
    store = Store(store_url)
    records = IncidentRecords(store.database)
    older = rec("INC-2026-11-03-001", "P1", "api", "11-03 14:00", 5, 2, 60)
    assert records.save(older.model_copy(update={"version": 2}))
    assert not records.save(older.model_copy(update={"version": 1}))  # older: ignored
    open_one = rec("INC-2026-11-04-001", "P2", "web", "11-04 09:00", None, None, None)
    assert records.save(open_one)
    period = records.overlapping(
        datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert [r.incident_id for r in period] == ["INC-2026-11-04-001"]
    assert records.count() == 2 and [r.incident_id for r in records.all()] == [
        "INC-2026-11-03-001",
        "INC-2026-11-04-001",
    ]

    page = {
        "idempotency_key": "INC-2026-11-04-001:page-1:carol:outbox",
        "incident_id": "INC-2026-11-04-001",
        "workflow_id": "w",
        "kind": "page",
        "recipient": "carol",
        "channel": "outbox",
        "subject": "P2 web",
        "text": "web slow",
        "scheduled_at": T0.isoformat(),
        "recorded_at": T0.isoformat(),
    }
    second = {**page, "idempotency_key": "INC-2026-11-04-001:page-2:dave:outbox"}
    assert store.record_notifications([page, page, second]) == [True, False, True]
    assert [n.recipient for n in store.notifications("INC-2026-11-04-001")] == ["carol", "carol"]
    assert [n.status for n in store.notifications(limit=1)] == ["sent"]

    before, after = store.begin_mitigation_run("m1", incident_id="INC-1", action="rollback")
    assert before is None and (after.status, after.attempts) == ("pending", 1)
    before, after = store.begin_mitigation_run("m1", incident_id="INC-1", action="rollback")
    assert before is not None and (before.attempts, after.attempts) == (1, 2)
    assert store.finish_mitigation_run("m1", "succeeded", {"ok": True})
    assert not store.finish_mitigation_run("m1", "failed", {"ok": False})  # the first stands
    assert [(r.status, r.result) for r in store.mitigation_runs("INC-1")] == [
        ("succeeded", {"ok": True})
    ]


def test_first_attempts_at_once_on_separate_engines(store_url: str) -> None:
    """Mitigation runs and integrations seen: on PostgreSQL two first attempts at once both
    find no row (no single writer as on SQLite); exactly one is first, neither fails."""
    Store(store_url)
    count = 6
    barrier = threading.Barrier(count)
    firsts: list[bool] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        db = Database(store_url)  # its own connections, as another worker's
        try:
            barrier.wait()
            before, _ = Store(db).begin_mitigation_run("m", incident_id="INC-1", action="a")
            Handoffs(db).touch_integration("grafana", at=T0)
            firsts.append(before is None)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            db.close()

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(firsts) == [False] * (count - 1) + [True]
    run = Store(store_url).mitigation_run("m")
    assert run is not None and run.attempts == count
    assert Handoffs(Store(store_url).database).integrations_seen() == {"grafana": T0}


@pytest.mark.parametrize(
    ("given", "opened"),
    [
        ("postgresql://fw:pw@db/firewatch", "postgresql+psycopg://fw:pw@db/firewatch"),
        ("postgres://fw@db:5433/firewatch", "postgresql+psycopg://fw@db:5433/firewatch"),
        ("postgresql+psycopg://fw@db/firewatch", "postgresql+psycopg://fw@db/firewatch"),
        ("postgresql+psycopg2://fw@db/firewatch", "postgresql+psycopg2://fw@db/firewatch"),
        ("sqlite:////data/firewatch.db", "sqlite:////data/firewatch.db"),
    ],
)
def test_plain_postgresql_urls_mean_psycopg_3(given: str, opened: str) -> None:
    assert normalise_url(given).render_as_string(hide_password=False) == opened


def test_a_plain_url_opens_the_same_database(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    store = Store(plain)
    assert store.database is Store(postgres_url).database  # one engine per database
    assert store.allocate_incident_number(T0.date(), "w#r") == 1


def test_no_postgresql_on_the_machine_is_an_error_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tests.postgres.glob.glob", lambda pattern: [])
    monkeypatch.setattr("tests.postgres.shutil.which", lambda name: None)
    with pytest.raises(postgres.PostgresMissing, match=r"make test-deps"):
        postgres.PostgresServer()


def test_the_test_cluster(postgres_server: postgres.PostgresServer, postgres_url: str) -> None:
    """Loopback only, durability off, Firewatch's role is not a superuser, a wrong password
    is refused, and the data dir goes away with the server."""
    assert Path(postgres_server.dir).is_dir()
    db = Database(postgres_url)
    try:
        with db.read() as conn:
            assert conn.exec_driver_sql("SHOW fsync").scalar() == "off"
            assert conn.exec_driver_sql("SHOW listen_addresses").scalar() == "127.0.0.1"
            assert (
                conn.exec_driver_sql(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                ).scalar()
                is False
            )
    finally:
        db.close()
    wrong = Database(postgres_url.replace(postgres_server.password, "wrong"))
    try:
        with pytest.raises(Exception, match="password authentication failed"), wrong.read():
            pass
    finally:
        wrong.close()


def test_the_latest_sighting_of_a_new_integration_wins_a_race(store_url: str) -> None:
    """Processes that see a new integration at once, each at its own time: the latest time
    stays, whichever process wrote first (an UPDATE that found no row, then an INSERT that
    ignored the conflict, kept the first writer's time on PostgreSQL)."""
    Store(store_url)
    count = 6

    def sighting(n: int) -> None:
        db = Database(store_url)  # its own connections, as another process's
        try:
            Handoffs(db).touch_integration("new-source", at=T0 + timedelta(seconds=n))
        finally:
            db.close()

    at_once(count, sighting)
    seen = Handoffs(Database(store_url)).integrations_seen()
    assert seen == {"new-source": T0 + timedelta(seconds=count - 1)}
