"""The calendar feed's text across a DST change, read back by two independent parsers."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import icalendar
import vobject

from domain.calendar_feed import render_feed
from domain.policy import Role
from domain.schedule import ScheduledOverride, coverage
from tests.domain.support import policy

NEW_YORK = ZoneInfo("America/New_York")
ROSTER = policy().roster


def test_handoffs_stay_at_nine_local_across_the_spring_change() -> None:
    # US clocks go forward on Sun 14 Mar 2027: Monday 09:00 is 14:00Z before, 13:00Z after.
    start, end = datetime(2027, 3, 1, 14, tzinfo=UTC), datetime(2027, 3, 22, 13, tzinfo=UTC)
    cover = ScheduledOverride(
        id=9,
        role=Role.PRIMARY,
        person="erin",
        start=datetime(2027, 3, 10, 17, tzinfo=UTC),
        end=datetime(2027, 3, 10, 23, tzinfo=UTC),
        created_by="frank",
        created_at=start,
    )
    segments = coverage(ROSTER, Role.PRIMARY, start, end, [cover])
    body = render_feed("Primary On-Call", "MadPlan", ROSTER, segments, start).decode()

    by_vobject = [
        (e.dtstart.value, e.dtend.value, e.summary.value, e.uid.value)
        for e in vobject.readOne(body).vevent_list
    ]
    by_icalendar = [
        (e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"]), str(e["uid"]))
        for e in icalendar.Calendar.from_ical(body).walk("VEVENT")
    ]
    assert by_vobject == by_icalendar
    assert [(s, e, summary) for s, e, summary, _ in by_vobject] == [
        (
            datetime(2027, 3, 1, 14, tzinfo=UTC),
            datetime(2027, 3, 8, 14, tzinfo=UTC),
            "Alice Andersen: Primary On-Call",
        ),
        (
            datetime(2027, 3, 8, 14, tzinfo=UTC),
            datetime(2027, 3, 10, 17, tzinfo=UTC),
            "Bob Berg: Primary On-Call",
        ),
        (
            datetime(2027, 3, 10, 17, tzinfo=UTC),
            datetime(2027, 3, 10, 23, tzinfo=UTC),
            "Erin Eriksen: Primary On-Call (override)",
        ),
        (
            datetime(2027, 3, 10, 23, tzinfo=UTC),
            datetime(2027, 3, 15, 13, tzinfo=UTC),
            "Bob Berg: Primary On-Call",
        ),
        (
            datetime(2027, 3, 15, 13, tzinfo=UTC),
            datetime(2027, 3, 22, 13, tzinfo=UTC),
            "Carol Christensen: Primary On-Call",
        ),
    ]
    # The three rota handoffs (the other two edges are the override's): 09:00 in New York.
    handoffs = [by_vobject[i][0].astimezone(NEW_YORK) for i in (0, 1, 4)]
    assert [h.strftime("%a %H:%M %Z") for h in handoffs] == [
        "Mon 09:00 EST",
        "Mon 09:00 EST",
        "Mon 09:00 EDT",
    ]
    assert len({uid for *_, uid in by_vobject}) == len(by_vobject)  # stable, distinct UIDs
    assert "X-WR-CALNAME:MadPlan on-call: Primary On-Call" in body
    assert "X-PUBLISHED-TTL:PT1H" in body and "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in body
