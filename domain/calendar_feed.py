"""iCalendar (RFC 5545) feeds of the on-call schedule, for calendar apps to subscribe to.

One event per shift (``domain.schedule.coverage`` segments, overrides included). Times are
written in UTC: every calendar app shows them in its own zone, and a handoff at Monday
09:00 New York is 14:00Z in winter and 13:00Z in summer, so DST needs no VTIMEZONE. UIDs
are stable for a shift (role, start, person), so a refreshed feed updates events in place
instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vDuration

from domain.policy import ROLE_TITLES, Roster
from domain.schedule import Segment

PRODID = "-//Firewatch//On-call schedule//EN"
REFRESH = timedelta(hours=1)


def _summary(roster: Roster, segment: Segment) -> str:
    person = roster.person(segment.person)
    name = person.label if person is not None else segment.person
    cover = " (override)" if segment.override is not None else ""
    return f"{name}: {ROLE_TITLES[segment.role]}{cover}"


def render_feed(
    title: str, team: str, roster: Roster, segments: Sequence[Segment], now: datetime
) -> bytes:
    """The feed ``title`` over ``segments``, as an ``.ics`` document."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"{team} on-call: {title}")
    cal.add("x-published-ttl", vDuration(REFRESH))  # an X- property: say it is a duration
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    stamp = now.astimezone(UTC).replace(microsecond=0)
    for segment in segments:
        start = segment.start.astimezone(UTC)
        event = Event()
        event.add("uid", f"{segment.role.value}-{start:%Y%m%dT%H%M%SZ}-{segment.person}@firewatch")
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("dtend", segment.end.astimezone(UTC))
        event.add("summary", _summary(roster, segment))
        detail = f"{ROLE_TITLES[segment.role]} for {team}"
        if segment.override is not None:
            detail += f"; override #{segment.override}"
        event.add("description", detail)
        event.add("transp", "TRANSPARENT")  # on call is not busy
        cal.add_component(event)
    return bytes(cal.to_ical())
