"""Rotations: who holds each role at an instant, DST-safe handoffs, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.policy import Override, Policy, Role, Roster, Rotation
from domain.policy_file import parse_policy
from domain.rotation import (
    holder,
    holder_name,
    next_handoffs,
    on_call,
    scheduled,
    shift_bounds,
    shift_index,
)

POLICY_PATH = Path(__file__).resolve().parents[2] / "domain" / "default_policy.yaml"


@cache
def default_policy() -> Policy:
    return parse_policy(POLICY_PATH.read_text(), "default_policy.yaml")


def roster() -> Roster:
    return default_policy().roster


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def with_overrides(*overrides: Override) -> Roster:
    return roster().model_copy(update={"overrides": overrides})


# ---- The default policy: weekly, Monday 09:00 New York --------------------------------------


def test_first_handoff_is_0900_new_york_not_utc() -> None:
    r = roster()
    # 2026-01-05 09:00 EST = 14:00Z. One minute before, the previous (wrapped) shift holds.
    assert holder(r, Role.PRIMARY, utc(2026, 1, 5, 13, 59)).name == "dave"
    assert holder(r, Role.PRIMARY, utc(2026, 1, 5, 14, 0)).name == "alice"
    assert holder(r, Role.SECONDARY, utc(2026, 1, 5, 13, 59)).name == "alice"
    assert holder(r, Role.SECONDARY, utc(2026, 1, 5, 14, 0)).name == "bob"


def test_weekly_cycle_through_people() -> None:
    r = roster()
    expected = ["alice", "bob", "carol", "dave", "alice"]
    for week, name in enumerate(expected):
        at = utc(2026, 1, 5, 14, 0) + timedelta(weeks=week)
        assert holder(r, Role.PRIMARY, at).name == name
        assert (
            holder(r, Role.PRIMARY, at - timedelta(seconds=1)).name == (["dave", *expected][week])
        )


def test_returns_the_person_model() -> None:
    person = holder(roster(), Role.PRIMARY, utc(2026, 1, 6))
    assert person.name == "alice"
    assert person.label == "Alice Andersen"
    assert person.phone == "+15550100001"


def test_fixed_roles() -> None:
    r = roster()
    assert holder(r, Role.TEAM_LEAD, utc(2026, 1, 6)).name == "erin"
    assert holder(r, Role.ENGINEERING_MANAGER, utc(2026, 1, 6)).name == "frank"


def test_before_start_wraps_backwards() -> None:
    r = roster()
    assert holder(r, Role.PRIMARY, utc(2025, 12, 29, 14, 0)).name == "dave"
    assert holder(r, Role.PRIMARY, utc(2025, 12, 29, 13, 59)).name == "carol"
    assert holder(r, Role.PRIMARY, utc(2025, 12, 15, 14, 0)).name == "bob"
    assert holder(r, Role.PRIMARY, utc(2025, 12, 8, 14, 0)).name == "alice"
    assert holder(r, Role.PRIMARY, utc(2025, 12, 1, 14, 0)).name == "dave"
    assert shift_index(r.primary, utc(2025, 12, 1, 14, 0)) == -5
    # Far away in either direction never crashes.
    assert holder(r, Role.PRIMARY, utc(1970, 1, 1)).name in r.primary.people
    assert holder(r, Role.PRIMARY, utc(2200, 6, 1)).name in r.primary.people


def test_any_offset_gives_the_same_answer() -> None:
    r = roster()
    tokyo = datetime(2026, 1, 5, 23, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert tokyo == utc(2026, 1, 5, 14, 0)
    assert holder(r, Role.PRIMARY, tokyo).name == "alice"


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        holder(roster(), Role.PRIMARY, datetime(2026, 1, 5, 14, 0))


# ---- DST --------------------------------------------------------------------------------------


def test_spring_forward_week_is_167_hours() -> None:
    # US DST starts Sunday 2026-03-08. The Monday handoffs stay at 09:00 local:
    # 2026-03-02 09:00 EST = 14:00Z, 2026-03-09 09:00 EDT = 13:00Z.
    primary = roster().primary
    start, end = shift_bounds(primary, utc(2026, 3, 5, 12, 0))
    assert (start, end) == (utc(2026, 3, 2, 14, 0), utc(2026, 3, 9, 13, 0))
    assert end - start == timedelta(hours=167)
    assert start.tzinfo is UTC and end.tzinfo is UTC
    r = roster()
    assert holder(r, Role.PRIMARY, utc(2026, 3, 9, 12, 59)).name == "alice"
    # Adding 168h in UTC would still say alice here; local-date arithmetic says bob.
    assert holder(r, Role.PRIMARY, utc(2026, 3, 9, 13, 0)).name == "bob"
    assert holder(r, Role.PRIMARY, utc(2026, 3, 9, 13, 30)).name == "bob"


def test_fall_back_week_is_169_hours() -> None:
    # US DST ends Sunday 2026-11-01: 2026-10-26 09:00 EDT = 13:00Z, 2026-11-02 09:00 EST = 14:00Z.
    start, end = shift_bounds(roster().primary, utc(2026, 10, 30))
    assert (start, end) == (utc(2026, 10, 26, 13, 0), utc(2026, 11, 2, 14, 0))
    assert end - start == timedelta(hours=169)
    r = roster()
    assert (
        holder(r, Role.PRIMARY, utc(2026, 11, 2, 13, 30)).name
        == holder(r, Role.PRIMARY, utc(2026, 10, 26, 13, 0)).name
    )


def test_daily_rotation_across_european_dst() -> None:
    rotation = Rotation(
        people=("a", "b"),
        start=datetime(2026, 3, 27, 8, 0),
        timezone="Europe/Oslo",
        shift_length=timedelta(days=1),
    )
    # Europe switches on 2026-03-29: 08:00 CET = 07:00Z, 08:00 CEST = 06:00Z.
    assert shift_bounds(rotation, utc(2026, 3, 28, 12)) == (
        utc(2026, 3, 28, 7, 0),
        utc(2026, 3, 29, 6, 0),
    )
    assert scheduled(rotation, utc(2026, 3, 29, 5, 59)) == "b"
    assert scheduled(rotation, utc(2026, 3, 29, 6, 0)) == "a"


def test_handoff_inside_dst_gap_resolves_before_the_change() -> None:
    # 02:30 does not exist in New York on 2026-03-08; fold=0 reads it as 02:30 EST = 07:30Z.
    rotation = Rotation(
        people=("a", "b"),
        start=datetime(2026, 3, 1, 2, 30),
        timezone="America/New_York",
        shift_length=timedelta(days=7),
    )
    assert shift_bounds(rotation, utc(2026, 3, 8, 7, 29)) == (
        utc(2026, 3, 1, 7, 30),
        utc(2026, 3, 8, 7, 30),
    )
    assert scheduled(rotation, utc(2026, 3, 8, 7, 30)) == "b"
    # The week after is back to 02:30 EDT = 06:30Z.
    assert shift_bounds(rotation, utc(2026, 3, 10)) == (
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 15, 6, 30),
    )


def test_bounds_always_contain_the_instant_over_a_year() -> None:
    primary = roster().primary
    at = utc(2025, 12, 1)
    while at < utc(2027, 1, 1):
        start, end = shift_bounds(primary, at)
        assert start <= at < end
        local_start = start.astimezone(ZoneInfo(primary.timezone))
        assert (local_start.weekday(), local_start.hour, local_start.minute) == (0, 9, 0)
        assert timedelta(hours=167) <= end - start <= timedelta(hours=169)
        at += timedelta(hours=5, minutes=17)


# ---- Overrides ----------------------------------------------------------------------------------


def test_override_wins_within_its_window_only() -> None:
    r = with_overrides(
        Override(
            role=Role.PRIMARY,
            person="erin",
            start=utc(2026, 1, 6),
            end=utc(2026, 1, 7),
        )
    )
    assert holder(r, Role.PRIMARY, utc(2026, 1, 5, 23, 59)).name == "alice"
    assert holder(r, Role.PRIMARY, utc(2026, 1, 6)).name == "erin"  # start inclusive
    assert holder(r, Role.PRIMARY, utc(2026, 1, 6, 23, 59)).name == "erin"
    assert holder(r, Role.PRIMARY, utc(2026, 1, 7)).name == "alice"  # end exclusive
    # Other roles are untouched.
    assert holder(r, Role.SECONDARY, utc(2026, 1, 6, 12)).name == "bob"


def test_last_matching_override_wins_and_fixed_roles_can_be_overridden() -> None:
    r = with_overrides(
        Override(role=Role.SECONDARY, person="carol", start=utc(2026, 1, 1), end=utc(2026, 2, 1)),
        Override(role=Role.SECONDARY, person="dave", start=utc(2026, 1, 10), end=utc(2026, 1, 11)),
        Override(role=Role.TEAM_LEAD, person="frank", start=utc(2026, 1, 10), end=utc(2026, 1, 11)),
    )
    assert holder_name(r, Role.SECONDARY, utc(2026, 1, 9)) == "carol"
    assert holder_name(r, Role.SECONDARY, utc(2026, 1, 10, 12)) == "dave"
    assert holder_name(r, Role.TEAM_LEAD, utc(2026, 1, 10, 12)) == "frank"
    assert holder_name(r, Role.TEAM_LEAD, utc(2026, 1, 11)) == "erin"


def test_on_call_lists_every_role_in_ladder_order() -> None:
    r = with_overrides(
        Override(role=Role.PRIMARY, person="frank", start=utc(2026, 1, 20), end=utc(2026, 1, 21))
    )
    team = on_call(r, utc(2026, 1, 20, 12))
    assert list(team) == [Role.PRIMARY, Role.SECONDARY, Role.TEAM_LEAD, Role.ENGINEERING_MANAGER]
    assert {role: p.name for role, p in team.items()} == {
        Role.PRIMARY: "frank",
        Role.SECONDARY: "dave",
        Role.TEAM_LEAD: "erin",
        Role.ENGINEERING_MANAGER: "frank",
    }


# ---- Handoff report -----------------------------------------------------------------------------


def test_next_handoffs_are_strictly_after() -> None:
    primary = roster().primary
    assert next_handoffs(primary, utc(2026, 1, 5, 14, 0), 3) == [
        (utc(2026, 1, 12, 14, 0), "bob"),
        (utc(2026, 1, 19, 14, 0), "carol"),
        (utc(2026, 1, 26, 14, 0), "dave"),
    ]
    assert next_handoffs(primary, utc(2026, 1, 5, 13, 59), 1) == [(utc(2026, 1, 5, 14, 0), "alice")]
    assert next_handoffs(primary, utc(2026, 1, 5), 0) == []
    with pytest.raises(ValueError):
        next_handoffs(primary, utc(2026, 1, 5), -1)


def test_next_handoffs_across_dst() -> None:
    assert next_handoffs(roster().primary, utc(2026, 3, 1), 2) == [
        (utc(2026, 3, 2, 14, 0), "alice"),
        (utc(2026, 3, 9, 13, 0), "bob"),
    ]
