"""The on-call schedule at run time: overrides, swaps and who covers what, when.

Pure rules over a roster (``domain.rotation`` computes the rota) and the overrides made at
run time (stored by ``storage.schedules``):

* An override is valid when its person is on the roster, it ends after it starts, it does
  not start in the past (a minute of slack, so "from now" works), and it does not overlap
  another run-time override of the same role. Overlaps are refused rather than layered:
  two people each believing they cover the same hour is how pages get missed.
* A swap trades one rota shift for another: ``--week`` picks the shift of the role's
  rotation that starts in the week beginning that day, ``--with`` names who takes it, and
  they give back their own next shift of that rotation. Two overrides, made together.
* ``coverage`` lays the overrides over the rota and returns who holds a role across a
  span as consecutive segments: what ``firewatch schedule`` prints and the calendar feeds
  publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from domain import rotation
from domain.policy import ROLE_TITLES, Override, Role, Roster, Rotation

# "From now" typed a few seconds ago is not in the past.
PAST_SLACK = timedelta(minutes=1)
ROTATION_ROLES = (Role.PRIMARY, Role.SECONDARY)


class ScheduleError(ValueError):
    """A schedule change that cannot be made; the message says why, for the person."""


class ScheduleConflict(ScheduleError):
    """The change overlaps one already made."""


def team_timezone(roster: Roster) -> ZoneInfo:
    """The zone a time given without an offset is read in: the primary rotation's."""
    return ZoneInfo(roster.primary.timezone)


def aware(at: datetime, roster: Roster) -> datetime:
    """``at`` as an aware UTC instant; a naive time is the team's local time."""
    if at.tzinfo is None or at.utcoffset() is None:
        at = at.replace(tzinfo=team_timezone(roster))
    return at.astimezone(UTC)


class ScheduledOverride(BaseModel):
    """An override made at run time, as stored (``id`` numbers it for ``remove``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    role: Role
    person: str
    start: datetime
    end: datetime
    reason: str | None = None
    swap_id: str | None = None  # the two halves of a swap share it
    created_by: str
    created_at: datetime

    def as_override(self) -> Override:
        return Override(role=self.role, person=self.person, start=self.start, end=self.end)

    def describe(self) -> str:
        title = ROLE_TITLES[self.role]
        return f"#{self.id} {self.person} as {title} {span_text(self.start, self.end)}"


def span_text(start: datetime, end: datetime) -> str:
    return f"{start.astimezone(UTC):%Y-%m-%d %H:%M} → {end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def rotation_for(roster: Roster, role: Role) -> Rotation | None:
    """The rotation behind ``role`` (None: a fixed role, such as the team lead)."""
    if role == Role.PRIMARY:
        return roster.primary
    if role == Role.SECONDARY:
        return roster.secondary
    return None


def _overlapping(
    role: Role, start: datetime, end: datetime, existing: Sequence[ScheduledOverride]
) -> ScheduledOverride | None:
    return next(
        (o for o in existing if o.role == role and o.start < end and start < o.end),
        None,
    )


def check_override(
    roster: Roster,
    override: Override,
    now: datetime,
    existing: Sequence[ScheduledOverride],
) -> Override:
    """``override`` if it can be added beside ``existing`` (the active run-time overrides);
    otherwise :class:`ScheduleError` saying what is wrong."""
    if roster.person(override.person) is None:
        known = ", ".join(p.name for p in roster.people)
        raise ScheduleError(f"{override.person!r} is not on the roster (people: {known})")
    if override.end <= override.start:  # the model checks it too; say it in our words
        raise ScheduleError("the override must end after it starts")
    if override.start < now - PAST_SLACK:
        raise ScheduleError(
            f"the override starts in the past ({override.start.astimezone(UTC):%Y-%m-%d %H:%M}"
            " UTC); give a start from now on"
        )
    clash = _overlapping(override.role, override.start, override.end, existing)
    if clash is not None:
        raise ScheduleConflict(f"it overlaps override {clash.describe()}; remove that one first")
    return override


@dataclass(frozen=True)
class Swap:
    """Two rota shifts traded: ``taker`` covers ``giver``'s shift and the reverse."""

    role: Role
    giver: str  # holds the chosen week on the rota
    taker: str  # ``--with``
    given: Override  # taker covers giver's shift
    returned: Override  # giver covers taker's next shift

    @property
    def overrides(self) -> tuple[Override, Override]:
        return (self.given, self.returned)


def _week_shift(rot: Rotation, week: date) -> int:
    """The number of the first shift starting on or after local midnight of ``week``."""
    midnight = datetime.combine(week, time(), tzinfo=ZoneInfo(rot.timezone)).astimezone(UTC)
    index = rotation.shift_index(rot, midnight)
    if rotation.shift_bounds(rot, midnight)[0] < midnight:
        index += 1
    return index


def plan_swap(
    roster: Roster,
    role: Role,
    week: date,
    taker: str,
    now: datetime,
    existing: Sequence[ScheduledOverride],
) -> Swap:
    """The swap of ``role``'s shift starting in the week of ``week`` with ``taker``."""
    rot = rotation_for(roster, role)
    if rot is None:
        raise ScheduleError(
            f"{ROLE_TITLES[role]} has no rotation to swap; use `override add` instead"
        )
    if taker not in rot.people:
        raise ScheduleError(
            f"{taker!r} is not in the {ROLE_TITLES[role]} rotation"
            f" ({', '.join(rot.people)}); use `override add` instead"
        )
    index = _week_shift(rot, week)
    start, end = rotation.handoff_bounds(rot, index)
    if start >= datetime.combine(week + timedelta(days=7), time(), tzinfo=ZoneInfo(rot.timezone)):
        raise ScheduleError(f"no {ROLE_TITLES[role]} shift starts in the week of {week}")
    giver = rot.people[index % len(rot.people)]
    if giver == taker:
        raise ScheduleError(f"{taker} already holds {ROLE_TITLES[role]} that week")
    people = rot.people
    later = next(
        n for n in range(index + 1, index + 1 + len(people)) if people[n % len(people)] == taker
    )
    back_start, back_end = rotation.handoff_bounds(rot, later)
    given = Override(role=role, person=taker, start=start, end=end)
    returned = Override(role=role, person=giver, start=back_start, end=back_end)
    check_override(roster, given, now, existing)
    check_override(roster, returned, now, existing)
    return Swap(role=role, giver=giver, taker=taker, given=given, returned=returned)


def whole_shifts(roster: Roster, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` widened to whole rota shifts, so no shift is cut at either edge."""
    starts = [rotation.shift_bounds(r, start)[0] for r in (roster.primary, roster.secondary)]
    ends = [rotation.shift_bounds(r, end)[1] for r in (roster.primary, roster.secondary)]
    return min(starts), max(ends)


class Segment(BaseModel):
    """Who holds a role over ``[start, end)``; ``override`` numbers a run-time override."""

    model_config = ConfigDict(frozen=True)

    role: Role
    person: str
    start: datetime
    end: datetime
    override: int | None = None


def coverage(
    roster: Roster,
    role: Role,
    start: datetime,
    end: datetime,
    stored: Sequence[ScheduledOverride] = (),
) -> list[Segment]:
    """Who holds ``role`` from ``start`` to ``end``, as consecutive segments.

    The rota's handoffs and every override's edges cut the span; neighbouring pieces with
    the same holder (and the same override) are merged.
    """
    if end <= start:
        return []
    live = rotation.with_overrides(roster, [o.as_override() for o in stored])
    cuts = {start, end}
    rot = rotation_for(roster, role)
    if rot is not None:
        at = start
        while True:
            at = rotation.shift_bounds(rot, at)[1]
            if at >= end:
                break
            cuts.add(at)
    for o in (*roster.overrides, *(s.as_override() for s in stored)):
        cuts.update(t for t in (o.start, o.end) if start < t < end)
    points = sorted(cuts)
    segments: list[Segment] = []
    for left, right in pairwise(points):
        person = rotation.holder_name(live, role, left)
        source = next(
            (
                s.id
                for s in reversed(stored)
                if s.role == role and s.start <= left < s.end and s.person == person
            ),
            None,
        )
        last = segments[-1] if segments else None
        if last is not None and last.person == person and last.override == source:
            segments[-1] = last.model_copy(update={"end": right})
        else:
            segments.append(
                Segment(role=role, person=person, start=left, end=right, override=source)
            )
    return segments
