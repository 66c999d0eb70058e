"""The ``changes`` check reads the change feed (``Store.changes``) and the short texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from activities.runbooks import RunbookActivities, RunCheck
from activities.runbooks.checks import age, run_changes, window
from activities.runbooks.common import elapsed, number, span
from domain.changes import Change
from domain.runbooks import ChangesCheck, Outcome
from storage.store import Store

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def change(
    cid: str, summary: str, ago: timedelta, who: str | None = "alice", service: str = "api"
) -> Change:
    return Change(
        change_id=cid,
        service=service,
        summary=summary,
        source="api",
        who=who,
        at=NOW - ago,
        received_at=NOW - ago,
    )


async def test_newest_change_in_the_window(store: Store) -> None:
    store.record_change(change("d1", "v411", timedelta(hours=5), who="bob"))
    store.record_change(change("d2", "v412", timedelta(minutes=12)))
    store.record_change(change("d0", "v410", timedelta(hours=30)))  # outside 24h
    store.record_change(change("w1", "web v9", timedelta(minutes=1), service="web"))
    result = await run_changes(ChangesCheck(name="deploys"), store, "api", now=NOW)
    assert (result.outcome, result.summary) == (Outcome.OK, "v412 by alice 12m ago")
    assert result.value == (
        "2026-11-28 09:18 UTC · v412 · alice\n2026-11-28 04:30 UTC · v411 · bob"
    )


async def test_at_most_five_listed_and_long_summaries_shortened(store: Store) -> None:
    for n in range(8):
        store.record_change(change(f"c{n}", f"config change {n}", timedelta(minutes=10 + n)))
    long = "Deploy api v413: connection pool from 20 to 50, retry budget, new cache keys"
    store.record_change(change("big", long, timedelta(seconds=40), who=None))
    result = await run_changes(ChangesCheck(name="deploys"), store, "api", now=NOW)
    assert result.summary == "Deploy api v413: connection pool from 2… 40s ago"
    assert result.value is not None and len(result.value.splitlines()) == 5
    assert long in result.value


async def test_none_and_another_service(store: Store) -> None:
    store.record_change(change("w1", "web v9", timedelta(hours=2), service="web"))
    none = await run_changes(ChangesCheck(name="deploys"), store, "api", now=NOW)
    assert (none.outcome, none.summary, none.value) == (Outcome.OK, "none in 24h", None)
    week = await run_changes(
        ChangesCheck(name="deploys", within=timedelta(days=7)), store, "api", now=NOW
    )
    assert week.summary == "none in 7d"
    other = ChangesCheck(name="web-deploys", service="web", within=timedelta(hours=3))
    web = await run_changes(other, store, "api", now=NOW)
    assert web.summary == "web v9 by alice 2h ago"


async def test_changes_through_the_activity(runbooks: RunbookActivities, store: Store) -> None:
    now = datetime.now(UTC)
    store.record_change(
        Change(
            change_id="x",
            service="api",
            summary="v500",
            source="api",
            who="carol",
            at=now - timedelta(minutes=3, seconds=5),
            received_at=now,
        )
    )
    inp = RunCheck(incident_id="INC-1", service="api", check=ChangesCheck(name="deploys"))
    result = await ActivityEnvironment().run(runbooks.run_check, inp)
    assert (result.kind, result.summary) == ("changes", "v500 by carol 3m ago")


def test_short_texts() -> None:
    assert [age(timedelta(seconds=s)) for s in (-5, 0, 59, 60, 3599, 3600, 4800, 86400, 97200)] == [
        "just now",
        "0s ago",
        "59s ago",
        "1m ago",
        "59m ago",
        "1h ago",
        "1h20m ago",
        "1d ago",
        "1d3h ago",
    ]
    assert [window(timedelta(hours=h)) for h in (0.5, 1, 24, 48, 72, 96)] == [
        "30m",
        "1h",
        "24h",
        "48h",
        "72h",
        "4d",
    ]
    assert [elapsed(s) for s in (0.0004, 0.12, 1.0, 2.345, 14.6)] == [
        "0ms",
        "120ms",
        "1.0s",
        "2.3s",
        "15s",
    ]
    assert [span(timedelta(seconds=s)) for s in (0.5, 1, 1.5, 10, 90)] == [
        "500ms",
        "1s",
        "1.5s",
        "10s",
        "1m30s",
    ]
    assert [number(v) for v in (0.12, 0.012345, 3.0, 1.254, 1234.5, float("nan"))] == [
        "0.12",
        "0.0123",
        "3",
        "1.25",
        "1234",
        "NaN",
    ]
