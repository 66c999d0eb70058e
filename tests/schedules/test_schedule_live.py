"""Overrides, swaps, `oncall --at`, `schedule` and the calendar feeds, end to end.

The CLI runs against a real API (uvicorn on loopback) over a real database. The feeds are
parsed by two independent iCalendar parsers (icalendar, which writes them, and vobject),
and must hold the same shifts as `firewatch schedule`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest
import vobject
from temporalio.testing import WorkflowEnvironment

from activities.store import Store
from domain import rotation
from domain.policy import Policy
from storage.schedules import Schedules
from tests.api.api_support import ApiStack, CliRun, api_policy, cli_against, running_api

Run = CliRun


@pytest.fixture(scope="module")
async def stack(
    dev_env: WorkflowEnvironment, default_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiStack]:
    data = tmp_path_factory.mktemp("schedule-data")
    # No worker: the schedule lives in Firewatch's database, not in Temporal.
    async with running_api(
        dev_env, api_policy(default_policy), data, "sched", with_worker=False
    ) as env:
        yield env.stack


@pytest.fixture
def firewatch(stack: ApiStack, tmp_path: Path) -> Iterator[Run]:
    invoke = cli_against(stack, tmp_path, user="erin")
    yield invoke
    # Leave no override behind for the next test.
    for row in json.loads(invoke("override", "list", "--json").stdout):
        invoke("override", "remove", str(row["id"]))


def schedules(stack: ApiStack) -> Schedules:
    return Schedules(Store(stack.data).database)


def next_monday(weeks_ahead: int) -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7) + timedelta(weeks=weeks_ahead)


def test_override_add_list_remove_and_the_audit_trail(firewatch: Run, stack: ApiStack) -> None:
    day = next_monday(1)
    added = firewatch(
        "override",
        "add",
        "--role",
        "primary",
        "--person",
        "frank",
        "--from",
        f"{day}T12:00",
        "--for",
        "6h",
        "--reason",
        "dentist cover",
    )
    assert added.exit_code == 0, added.output
    assert "frank" in added.stdout and "dentist cover" in added.stdout

    listed = json.loads(firewatch("override", "list", "--json").stdout)
    assert [(r["person"], r["role"], r["created_by"]) for r in listed] == [
        ("frank", "primary", "erin")
    ]
    # 12:00 New York time, as the team says it.
    start = datetime.fromisoformat(listed[0]["start"])
    assert start == datetime.fromisoformat(f"{day}T12:00-05:00") and (
        datetime.fromisoformat(listed[0]["end"]) - start == timedelta(hours=6)
    )

    # Who is on call then: frank, by the override; an hour later, the rota again.
    during = json.loads(firewatch("oncall", "--at", f"{day}T15:00", "--json").stdout)
    primary = next(r for r in during["roles"] if r["role"] == "primary")
    assert (primary["name"], primary["override"]) == ("frank", listed[0]["id"])
    # What comes next is the override's end, handing back to the rota (not next Monday).
    back = start + timedelta(hours=6)
    assert datetime.fromisoformat(primary["next_handoff_at"]) == back
    assert primary["next_name"] == rotation.scheduled(stack.policy.roster.primary, back)
    after = json.loads(firewatch("oncall", "--at", f"{day}T19:00", "--json").stdout)
    rota = rotation.scheduled(stack.policy.roster.primary, datetime.fromisoformat(after["at"]))
    assert next(r for r in after["roles"] if r["role"] == "primary")["name"] == rota

    removed = firewatch("override", "remove", str(listed[0]["id"]))
    assert removed.exit_code == 0 and "Removed" in removed.stdout
    again = firewatch("override", "remove", str(listed[0]["id"]))
    assert again.exit_code != 0
    assert f"override #{listed[0]['id']} was already removed by erin at " in again.stderr
    missing = firewatch("override", "remove", "99999")
    assert "there is no override #99999 (see `override list`)" in missing.stderr
    assert json.loads(firewatch("override", "list", "--json").stdout) == []
    shown = firewatch("override", "log").stdout.splitlines()
    end = start + timedelta(hours=6)
    stamps = (
        f"{start.astimezone(UTC):%Y-%m-%d %H:%M} UTC → {end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    )
    assert f"frank as primary {stamps}" in shown[1], shown  # to the minute, no microseconds
    log = json.loads(firewatch("override", "log", "--json").stdout)
    assert [(e["action"], e["actor"], e["override_id"]) for e in log[:2]] == [
        ("removed", "erin", listed[0]["id"]),
        ("added", "erin", listed[0]["id"]),
    ]


def test_oncall_outside_any_sensible_year_is_a_clear_error(firewatch: Run) -> None:
    for at in ("9999-12-31T23:59", "0001-01-01T00:00"):
        result = firewatch("oncall", "--at", at)
        assert result.exit_code != 0
        assert f"`at` must be in the years 1970–2999: '{at}'" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--person", "zed", "--for", "2h"), "'zed' is not on the roster"),
        (("--person", "bob", "--from", "2026-01-01T09:00", "--for", "2h"), "starts in the past"),
        (
            ("--person", "bob", "--from", "2030-01-02T09:00", "--to", "2030-01-01T09:00"),
            "must end after it starts",
        ),
        (("--person", "bob", "--for", "2h", "--by", "mallory"), "'mallory' is not on the roster"),
    ],
)
def test_bad_overrides_are_refused_and_change_nothing(
    firewatch: Run, stack: ApiStack, args: tuple[str, ...], message: str
) -> None:
    before = schedules(stack).audit()
    result = firewatch("override", "add", "--role", "primary", *args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert schedules(stack).audit() == before
    assert schedules(stack).active(datetime.now(UTC)) == []


def test_swaps_are_made_together_and_overlapping_swaps_are_refused(
    firewatch: Run, stack: ApiStack
) -> None:
    week = next_monday(2)
    roster = stack.policy.roster
    holder = rotation.scheduled(roster.primary, datetime.fromisoformat(f"{week}T15:00+00:00"))
    taker = next(p for p in roster.primary.people if p != holder)
    made = firewatch("swap", "--role", "primary", "--week", str(week), "--with", taker, "--json")
    assert made.exit_code == 0, made.output
    halves = json.loads(made.stdout)
    assert [h["person"] for h in halves] == [taker, holder]
    assert halves[0]["swap_id"] == halves[1]["swap_id"] is not None

    # The same week again, with someone else: it overlaps the first swap; nothing is stored.
    other = next(p for p in roster.primary.people if p not in (holder, taker))
    again = firewatch("swap", "--role", "primary", "--week", str(week), "--with", other)
    assert again.exit_code == 1 and "overlaps override" in again.output
    assert len(schedules(stack).active(datetime.now(UTC))) == 2

    # Removing one half removes the swap.
    gone = firewatch("override", "remove", str(halves[1]["id"]), "--json")
    assert {r["id"] for r in json.loads(gone.stdout)} == {h["id"] for h in halves}


def _vobject_events(body: str) -> list[tuple[datetime, datetime, str]]:
    cal = vobject.readOne(body)
    return sorted(
        (ev.dtstart.value.astimezone(UTC), ev.dtend.value.astimezone(UTC), ev.summary.value)
        for ev in cal.vevent_list
    )


def _icalendar_events(body: str) -> list[tuple[datetime, datetime, str]]:
    cal = icalendar.Calendar.from_ical(body)
    return sorted(
        (
            ev.decoded("dtstart").astimezone(UTC),
            ev.decoded("dtend").astimezone(UTC),
            str(ev["summary"]),
        )
        for ev in cal.walk("VEVENT")
    )


def test_calendar_feeds_parse_alike_and_match_the_schedule(firewatch: Run, stack: ApiStack) -> None:
    day = next_monday(1)
    assert (
        firewatch(
            "override",
            "add",
            "--role",
            "primary",
            "--person",
            "erin",
            "--from",
            f"{day}T10:00",
            "--to",
            f"{day}T18:00",
        ).exit_code
        == 0
    )
    urls = {
        r["name"]: r["url"]
        for r in json.loads(firewatch("schedule", "--ical-urls", "--json").stdout)
    }
    assert set(urls) >= {"schedules/primary.ics", "schedules/secondary.ics", "people/erin.ics"}

    feed = httpx.get(urls["schedules/primary.ics"])
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    by_vobject = _vobject_events(feed.text)
    assert by_vobject == _icalendar_events(feed.text)
    # Every shift `firewatch schedule` prints for the coming weeks is in the feed.
    shown = json.loads(firewatch("schedule", "--weeks", "4", "--role", "primary", "--json").stdout)
    names = {p.name: p.label for p in stack.policy.roster.people}
    feed_shifts = {(s, e, summary.split(":")[0]) for s, e, summary in by_vobject}
    for shift in shown["shifts"][1:]:  # the first starts "now", the feed at its real start
        start, end = datetime.fromisoformat(shift["start"]), datetime.fromisoformat(shift["end"])
        if end >= datetime.fromisoformat(shown["end"]):
            continue  # cut at the view's end
        assert (start, end, names[shift["person"]]) in feed_shifts
    # Handoffs at 09:00 New York: 14:00Z in winter, 13:00Z in summer.
    for start, _, summary in by_vobject:
        if "override" not in summary:
            local = start.astimezone(rotation.ZoneInfo("America/New_York"))
            assert (local.hour, local.minute) in ((9, 0), (10, 0), (18, 0)), start

    erin = _vobject_events(httpx.get(urls["people/erin.ics"]).text)
    assert [(s, e) for s, e, _ in erin if "override" in _] == [
        (datetime.fromisoformat(f"{day}T10:00-05:00"), datetime.fromisoformat(f"{day}T18:00-05:00"))
    ]

    # A wrong token, or one from another feed, opens nothing; rotation revokes old URLs.
    base, token = urls["people/erin.ics"].split("?token=")
    assert httpx.get(f"{base}?token={'0' * 32}").status_code == 403
    assert httpx.get(urls["people/erin.ics"].replace("erin", "dave")).status_code == 403
    rotated = firewatch("schedule", "--rotate-token")
    assert rotated.exit_code == 0 and token not in rotated.stdout
    assert httpx.get(urls["people/erin.ics"]).status_code == 403
    new = dict(line.split()[:2] for line in rotated.stdout.splitlines()[2:])
    assert httpx.get(new["people/erin.ics"]).status_code == 200


def test_schedule_prints_the_coming_shifts_in_team_time(firewatch: Run) -> None:
    result = firewatch("schedule", "--weeks", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Shifts for the next 2 week(s), America/New_York time:"
    assert any("Primary On-Call" in line and "09:00 E" in line for line in lines[2:])
