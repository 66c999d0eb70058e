"""Maintenance windows: while one is on, alerts for its service are recorded but page nobody.

Pure rules: the window model, what makes a new window acceptable, whether a service is in
maintenance at an instant, and the texts people read about it (the ingest answer, the
incident timeline). Storage is ``storage.maintenance``; the announcements' timer is
``workflows.maintenance``; the incident side (paging held until the window ends) is
``IncidentState.paging_hold``, respected by ``domain.escalation.plan``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.policy import Policy

REASON_CHARS = 500
SERVICE_CHARS = 200
# A window longer than this is a mistake (a forgotten --to), not maintenance.
LONGEST_WINDOW = timedelta(days=14)
END_COMMAND = "firewatch maintenance end {window} --by NAME"

WindowPhase = Literal["scheduled", "active", "ended"]


def maintenance_workflow_id(window: int) -> str:
    """The window's timer workflow (announcements, releasing held incidents)."""
    return f"maintenance/{window}"


class MaintenanceRefused(ValueError):
    """A window that cannot be stored (or ended): ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class MaintenanceWindow(BaseModel):
    """One window as stored. ``ended_at``: ended early (``firewatch maintenance end``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    service: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def effective_end(self) -> datetime:
        """When it stops holding pages: its scheduled end, or earlier if ended early."""
        if self.ended_at is not None and self.ended_at < self.ends_at:
            return self.ended_at
        return self.ends_at

    @property
    def ended_early(self) -> bool:
        return self.ended_at is not None and self.ended_at < self.ends_at

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.effective_end

    def phase_at(self, at: datetime) -> WindowPhase:
        if at >= self.effective_end:
            return "ended"
        return "active" if at >= self.starts_at else "scheduled"

    def hold(self) -> PagingHold:
        return PagingHold(
            window=self.id, service=self.service, reason=self.reason, until=self.effective_end
        )


class PagingHold(BaseModel):
    """An incident opened during a window: nobody is paged until ``until`` (or an early end)."""

    model_config = ConfigDict(frozen=True)

    window: int
    service: str
    reason: str
    until: datetime


class NewWindow(BaseModel):
    """A window that passed every check, ready to be stored."""

    model_config = ConfigDict(frozen=True)

    service: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str


def known_services(policy: Policy) -> frozenset[str]:
    """The services the policy names (its integrations' and its runbooks'); empty when it
    names none, and then any service may be put in maintenance."""
    return frozenset(i.service for i in policy.integrations) | frozenset(policy.runbooks)


def validate_window(
    policy: Policy,
    *,
    added_services: Iterable[str] = (),
    service: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    by: str,
    now: datetime,
) -> NewWindow:
    """The window to store, or :class:`MaintenanceRefused` saying what is wrong."""
    service = service.strip()
    reason = " ".join(reason.split())
    if not service:
        raise MaintenanceRefused("service", "a maintenance window needs a service")
    known = known_services(policy) | frozenset(added_services)  # integrations added at run time
    if known and service not in known:
        raise MaintenanceRefused(
            "service",
            f"unknown service {service!r}: Firewatch knows {', '.join(sorted(known))}",
        )
    if not reason:
        raise MaintenanceRefused("reason", "a maintenance window needs a reason")
    if len(reason) > REASON_CHARS:
        raise MaintenanceRefused("reason", f"the reason is longer than {REASON_CHARS} characters")
    check_actor(policy, by)
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise MaintenanceRefused(name, f"{name} needs a UTC offset (e.g. Z)")
    starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    if ends_at <= starts_at:
        raise MaintenanceRefused(
            "ends_at",
            "a maintenance window with its end before its start: it would end at "
            f"{stamp(ends_at)} but start at {stamp(starts_at)}",
        )
    if ends_at <= now:
        raise MaintenanceRefused(
            "ends_at", f"the window would already be over: it ends at {stamp(ends_at)}"
        )
    if ends_at - starts_at > LONGEST_WINDOW:
        raise MaintenanceRefused(
            "ends_at", f"a maintenance window lasts at most {LONGEST_WINDOW.days} days"
        )
    return NewWindow(
        service=service, starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=by
    )


def check_actor(policy: Policy, by: str) -> str:
    """Only roster people act: their roster name."""
    person = policy.roster.person(by.strip()) if by.strip() else None
    if person is None:
        raise MaintenanceRefused("by", f"{by!r} is not on the roster: only roster people act")
    return person.name


def check_end(window: MaintenanceWindow, now: datetime) -> None:
    """A window can be ended while it is scheduled or on, once."""
    if window.phase_at(now) == "ended":
        how = f"ended early by {window.ended_by}" if window.ended_early else "over"
        raise MaintenanceRefused(
            "id", f"maintenance window {window.id} is already {how} ({stamp(window.effective_end)})"
        )


def in_maintenance(
    windows: Iterable[MaintenanceWindow], service: str, at: datetime
) -> MaintenanceWindow | None:
    """The window that holds ``service``'s pages at ``at``: of the active ones, the one that
    ends last (so an incident is held for as long as any window covers it); None if none."""
    active = [w for w in windows if w.service == service and w.active_at(at)]
    return max(active, key=lambda w: (w.effective_end, w.id)) if active else None


# ---- texts -------------------------------------------------------------------------------


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def until_text(at: datetime, now: datetime) -> str:
    """``14:00 UTC`` today, ``2026-11-29 14:00 UTC`` on another day."""
    at, now = at.astimezone(UTC), now.astimezone(UTC)
    return f"{at:%H:%M} UTC" if at.date() == now.date() else stamp(at)


def ingest_note(window: MaintenanceWindow, now: datetime, *, opened: bool) -> str:
    """What the ingest answer says about an alert for a service in maintenance."""
    why = (
        f"{window.service} is in maintenance until {until_text(window.effective_end, now)} "
        f"({window.reason}, window {window.id})"
    )
    if opened:
        return f"accepted; nobody paged: {why}"
    return f"accepted; joined the open incident, which goes on as before ({why})"


def not_paged_text(hold: PagingHold, now: datetime) -> str:
    """The timeline entry of an incident opened during a window."""
    return (
        f"Not paged: {hold.service} is in maintenance ({hold.reason}, window {hold.window}) "
        f"until {until_text(hold.until, now)}"
    )


def released_text(hold: PagingHold, *, by: str | None = None, early: bool = False) -> str:
    """The timeline entry when the window is over and the held incident is still open."""
    how = f" early{f' by {by}' if by else ''}" if early else ""
    return (
        f"Maintenance window {hold.window} ({hold.reason}) ended{how}: "
        "paging starts now, as for a new incident"
    )
