"""Run-time overrides, swaps and coverage: table tests and properties over the shipped roster."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import rotation
from domain.policy import Override, Role
from domain.schedule import (
    ScheduledOverride,
    ScheduleError,
    check_override,
    coverage,
    plan_swap,
)
from tests.domain.support import policy

ROSTER = policy().roster
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday, after the 09:00 NY handoff


def stored(id: int, role: Role, person: str, start: datetime, end: datetime) -> ScheduledOverride:
    return ScheduledOverride(
        id=id, role=role, person=person, start=start, end=end, created_by="erin", created_at=NOW
    )


def utc(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("person", "start", "end", "message"),
    [
        ("zed", utc(12, 1), utc(12, 2), "'zed' is not on the roster"),
        ("bob", utc(11, 29), utc(12, 2), "starts in the past"),
        ("bob", utc(12, 3), utc(12, 4), "overlaps override #7 dave as Primary On-Call"),
    ],
)
def test_refused_overrides_say_why(
    person: str, start: datetime, end: datetime, message: str
) -> None:
    existing = [stored(7, Role.PRIMARY, "dave", utc(12, 2), utc(12, 5))]
    with pytest.raises(ScheduleError, match=message):
        check_override(
            ROSTER, Override(role=Role.PRIMARY, person=person, start=start, end=end), NOW, existing
        )


def test_an_override_beside_others_is_accepted() -> None:
    existing = [
        stored(7, Role.PRIMARY, "dave", utc(12, 2), utc(12, 5)),
        stored(8, Role.SECONDARY, "carol", utc(12, 1), utc(12, 9)),  # another role
    ]
    wanted = Override(role=Role.PRIMARY, person="bob", start=utc(12, 5), end=utc(12, 6))
    assert check_override(ROSTER, wanted, NOW, existing) == wanted
    # "From now", typed a few seconds ago, is not in the past.
    soon = Override(
        role=Role.PRIMARY, person="bob", start=NOW - timedelta(seconds=20), end=utc(12, 1)
    )
    assert check_override(ROSTER, soon, NOW, []) == soon


def test_a_swap_trades_a_week_for_the_takers_next_week() -> None:
    # Primary rota: alice, bob, carol, dave weekly from Mon 2026-01-05 09:00 New York.
    week = date(2026, 12, 7)
    giver = rotation.scheduled(ROSTER.primary, utc(12, 8))
    swap = plan_swap(ROSTER, Role.PRIMARY, week, "dave", NOW, [])
    assert swap.giver == giver == "alice"
    assert swap.given == Override(
        role=Role.PRIMARY, person="dave", start=utc(12, 7, 14), end=utc(12, 14, 14)
    )
    # Dave's own next primary week (after Bob's and Carol's): Alice covers it.
    assert swap.returned == Override(
        role=Role.PRIMARY,
        person="alice",
        start=utc(12, 28, 14),
        end=datetime(2027, 1, 4, 14, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("role", "week", "taker", "message"),
    [
        (Role.TEAM_LEAD, date(2026, 12, 7), "dave", "has no rotation to swap"),
        (Role.PRIMARY, date(2026, 12, 7), "erin", "not in the Primary On-Call rotation"),
        (Role.PRIMARY, date(2026, 12, 7), "alice", "alice already holds Primary On-Call"),
        (Role.PRIMARY, date(2026, 11, 23), "dave", "starts in the past"),
        (Role.PRIMARY, date(2026, 12, 14), "alice", "overlaps override #3"),
    ],
)
def test_refused_swaps_say_why(role: Role, week: date, taker: str, message: str) -> None:
    # An earlier swap already moved the week of 14 Dec to dave.
    existing = [stored(3, Role.PRIMARY, "dave", utc(12, 14, 14), utc(12, 21, 14))]
    with pytest.raises(ScheduleError, match=message):
        plan_swap(ROSTER, role, week, taker, NOW, existing)


def test_coverage_lays_overrides_over_the_rota() -> None:
    over = [stored(4, Role.PRIMARY, "erin", utc(12, 8), utc(12, 9))]
    segments = coverage(ROSTER, Role.PRIMARY, utc(12, 7), utc(12, 15), over)
    assert [(s.person, s.start, s.end, s.override) for s in segments] == [
        ("dave", utc(12, 7), utc(12, 7, 14), None),
        ("alice", utc(12, 7, 14), utc(12, 8), None),
        ("erin", utc(12, 8), utc(12, 9), 4),
        ("alice", utc(12, 9), utc(12, 14, 14), None),
        ("bob", utc(12, 14, 14), utc(12, 15), None),
    ]


def test_an_override_for_someone_who_left_the_roster_falls_back_to_the_rota() -> None:
    gone = Override(role=Role.PRIMARY, person="zed", start=utc(12, 8), end=utc(12, 9))
    live = rotation.with_overrides(ROSTER, [gone])
    assert rotation.holder_name(live, Role.PRIMARY, utc(12, 8, 12)) == "alice"


hours = st.integers(min_value=0, max_value=24 * 29)
# Up to four primary overrides in December: (start hour, length in hours, who).
spans = st.lists(
    st.tuples(hours, st.integers(1, 24 * 14), st.sampled_from(["bob", "erin"])), max_size=4
)


def december(found: list[tuple[int, int, str]]) -> list[ScheduledOverride]:
    start = utc(12, 1)
    return [
        stored(i + 1, Role.PRIMARY, who, start + timedelta(hours=a), start + timedelta(hours=a + n))
        for i, (a, n, who) in enumerate(found)
    ]


@settings(max_examples=60, deadline=None)
@given(found=spans, probe=hours)
def test_coverage_agrees_with_the_holder_at_every_instant(
    found: list[tuple[int, int, str]], probe: int
) -> None:
    start = utc(12, 1)
    over = december(found)
    end = start + timedelta(days=30)
    segments = coverage(ROSTER, Role.PRIMARY, start, end, over)
    # Consecutive, gapless, and each names who the live roster says holds the role.
    assert segments[0].start == start and segments[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(segments))
    at = start + timedelta(hours=probe)
    live = rotation.with_overrides(ROSTER, [o.as_override() for o in over])
    holding = next(s for s in segments if s.start <= at < s.end)
    assert holding.person == rotation.holder_name(live, Role.PRIMARY, at)


def test_the_next_change_is_the_next_handoff_without_overrides() -> None:
    rot = ROSTER.primary
    handoff, incoming = rotation.next_handoffs(rot, NOW, 1)[0]
    assert rotation.next_change(ROSTER, Role.PRIMARY, rot, NOW) == (handoff, incoming)


def test_the_next_change_sees_an_override_end_and_a_swapped_handoff() -> None:
    rot = ROSTER.primary
    current = rotation.holder_name(ROSTER, Role.PRIMARY, NOW)
    handoff, incoming = rotation.next_handoffs(rot, NOW, 1)[0]
    cover = "erin" if current != "erin" else "bob"
    # Covering the current shift for an hour (before its handoff): the rota's holder is back
    # at its end, not at the handoff.
    back = NOW + timedelta(hours=1)
    assert back < handoff
    short = Override(role=Role.PRIMARY, person=cover, start=NOW, end=back)
    live = rotation.with_overrides(ROSTER, [short])
    assert rotation.next_change(live, Role.PRIMARY, rot, NOW) == (back, current)
    # The current holder keeps next week too (a swap): the handoff changes nobody.
    kept = Override(role=Role.PRIMARY, person=current, start=handoff, end=handoff + timedelta(7))
    live = rotation.with_overrides(ROSTER, [kept])
    after = rotation.next_change(live, Role.PRIMARY, rot, NOW)
    assert after is not None and after[0] == handoff + timedelta(7) and after[1] != current
    assert incoming != current


@settings(max_examples=60, deadline=None)
@given(found=spans, probe=hours)
def test_the_next_change_agrees_with_the_coverage(
    found: list[tuple[int, int, str]], probe: int
) -> None:
    over = december(found)
    at = utc(12, 1) + timedelta(hours=probe)
    live = rotation.with_overrides(ROSTER, [o.as_override() for o in over])
    segments = coverage(ROSTER, Role.PRIMARY, at, at + timedelta(days=60), over)
    now_holding = segments[0].person
    expected = next(((s.start, s.person) for s in segments if s.person != now_holding), None)
    assert rotation.next_change(live, Role.PRIMARY, ROSTER.primary, at) == expected


def test_a_page_goes_to_the_rota_when_the_overrides_cannot_be_read(tmp_path: Path) -> None:
    from activities.people import OncallActivities
    from activities.store import Store
    from storage.schedules import Schedules

    database = Store(tmp_path).database
    with database.write() as db:
        db.exec_driver_sql("DROP TABLE schedule_overrides")  # the read fails
    live = OncallActivities(Schedules(database)).live_roster(ROSTER, NOW)
    assert live == ROSTER
