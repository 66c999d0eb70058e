"""Who is on call: rotations, shift boundaries and overrides.

Rules (all pure; every function takes the instant it is asked about):

* A :class:`~domain.policy.Rotation` hands over at ``rotation.start``'s local wall-clock
  time, every ``shift_length`` (whole days), in ``rotation.timezone``. Shift boundaries are
  computed on local calendar dates, so a weekly Monday 09:00 New York handoff stays at
  09:00 local across DST changes (the shift that contains the change is 167 or 169 hours
  long, not 168).
* Shift ``n`` (``n = 0`` starts at ``rotation.start``) is held by
  ``people[n % len(people)]``. Instants before ``start`` wrap backwards with the same
  modular arithmetic, so any instant has a holder.
* A handoff wall time that does not exist locally (inside a spring-forward gap) resolves
  with the offset in force before the change (``fold=0``): 02:30 on a US spring-forward
  day hands over at 03:30 EDT. An ambiguous wall time (fall-back) uses its first
  occurrence.
* Overrides win over rotations and fixed roles: an override for the role whose
  ``start <= at < end`` names the holder; when several match, the one listed last wins
  (later entries are layered on top, as in PagerDuty schedule layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.policy import Override, Person, Role, Roster, Rotation


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got naive {at.isoformat()}")


def _shift_days(rotation: Rotation) -> int:
    return rotation.shift_length.days


def _handoff(rotation: Rotation, index: int) -> datetime:
    """The UTC instant at which shift ``index`` starts (index 0 = ``rotation.start``)."""
    tz = ZoneInfo(rotation.timezone)
    day: date = rotation.start.date() + timedelta(days=index * _shift_days(rotation))
    local = datetime.combine(day, rotation.start.time(), tzinfo=tz)  # fold=0
    return local.astimezone(UTC)


def shift_index(rotation: Rotation, at: datetime) -> int:
    """The number of the shift containing ``at`` (negative before ``rotation.start``)."""
    _require_aware(at)
    tz = ZoneInfo(rotation.timezone)
    local_day = at.astimezone(tz).date()
    index = (local_day - rotation.start.date()).days // _shift_days(rotation)
    # The local-date estimate is off by at most one shift (when ``at`` falls on a handoff
    # day before the handoff time); settle it by comparing real instants.
    while at < _handoff(rotation, index):
        index -= 1
    while at >= _handoff(rotation, index + 1):
        index += 1
    return index


def handoff_bounds(rotation: Rotation, index: int) -> tuple[datetime, datetime]:
    """Aware UTC ``[start, end)`` of shift number ``index``."""
    return _handoff(rotation, index), _handoff(rotation, index + 1)


def shift_bounds(rotation: Rotation, at: datetime) -> tuple[datetime, datetime]:
    """Aware UTC ``[start, end)`` of the shift that contains the aware instant ``at``."""
    index = shift_index(rotation, at)
    return _handoff(rotation, index), _handoff(rotation, index + 1)


def scheduled(rotation: Rotation, at: datetime) -> str:
    """The roster name the rotation schedules at ``at`` (overrides not applied)."""
    return rotation.people[shift_index(rotation, at) % len(rotation.people)]


def with_overrides(roster: Roster, overrides: Sequence[Override]) -> Roster:
    """``roster`` with run-time ``overrides`` layered over the policy file's (later wins).

    An override naming someone no longer on the roster is left out: the rota holds then.
    """
    known = [o for o in overrides if roster.person(o.person) is not None]
    if not known:
        return roster
    return roster.model_copy(update={"overrides": (*roster.overrides, *known)})


def _override(roster: Roster, role: Role, at: datetime) -> str | None:
    found: str | None = None
    for override in roster.overrides:
        if override.role == role and override.start <= at < override.end:
            found = override.person
    return found


def holder_name(roster: Roster, role: Role, at: datetime) -> str:
    """The roster name holding ``role`` at the aware instant ``at``."""
    _require_aware(at)
    name = _override(roster, role, at)
    if name is not None:
        return name
    if role == Role.PRIMARY:
        return scheduled(roster.primary, at)
    if role == Role.SECONDARY:
        return scheduled(roster.secondary, at)
    if role == Role.TEAM_LEAD:
        return roster.team_lead
    return roster.engineering_manager


def holder(roster: Roster, role: Role, at: datetime) -> Person:
    """Who holds ``role`` at the aware instant ``at`` (overrides first, then the rota)."""
    name = holder_name(roster, role, at)
    person = roster.person(name)
    if person is None:  # the Roster validator makes this unreachable
        raise LookupError(f"{role.value}: {name!r} is not in the roster")
    return person


def on_call(roster: Roster, at: datetime) -> dict[Role, Person]:
    """Every role's holder at ``at``, in ladder order (primary first)."""
    return {role: holder(roster, role, at) for role in Role}


def next_change(
    roster: Roster, role: Role, rotation: Rotation, at: datetime, *, within: int = 50
) -> tuple[datetime, str] | None:
    """When someone else next holds ``role`` after ``at``, and who: the rota's handoffs with
    the roster's overrides applied (an override's end hands back early; a swap can make a
    handoff change nobody). None if nobody else holds it within ``within`` changes."""
    current = holder_name(roster, role, at)
    t = at
    for _ in range(within):
        edges = [
            edge
            for o in roster.overrides
            if o.role == role
            for edge in (o.start, o.end)
            if edge > t
        ]
        edges.append(next_handoffs(rotation, t, 1)[0][0])
        t = min(edges)
        name = holder_name(roster, role, t)
        if name != current:
            return t, name
    return None


def next_handoffs(rotation: Rotation, at: datetime, count: int) -> list[tuple[datetime, str]]:
    """The next ``count`` handoffs strictly after ``at``: (UTC instant, incoming name).

    Overrides are not applied: this is the rota as planned, for the weekly handoff report.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    index = shift_index(rotation, at)
    people = rotation.people
    return [
        (_handoff(rotation, n), people[n % len(people)])
        for n in range(index + 1, index + 1 + count)
    ]
