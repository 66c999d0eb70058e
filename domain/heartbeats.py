"""Heartbeat monitors (dead-man's switches): the pure decisions.

A job pings its monitor at least every ``period``; silence for ``period + grace`` is a
miss, which opens one incident per monitor (dedup key ``heartbeat:<name>``) through the
normal alert path, and the next ping resolves it. ``workflows.heartbeat`` keeps the timer;
everything it decides is here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from domain.durations import format_duration
from domain.ids import incident_workflow_id
from domain.incident import Alert
from domain.policy import HeartbeatMonitor

# Shown by `firewatch heartbeats`:
#   waiting  never pinged (no workflow yet: the first ping arms the monitor)
#   up       pinged within the period
#   late     past the period, within the grace: no incident yet
#   missed   silent for period + grace: an incident is open until the next ping
HeartbeatStatus = Literal["waiting", "up", "late", "missed"]


def heartbeat_workflow_id(name: str) -> str:
    return f"heartbeat/{name}"


def heartbeat_dedup_key(name: str) -> str:
    """Every miss of one monitor joins the same open incident."""
    return f"heartbeat:{name}"


def heartbeat_incident_workflow_id(name: str) -> str:
    """The incident a miss opens: incidents opened without an integration (``direct``)."""
    return incident_workflow_id(heartbeat_dedup_key(name))


class HeartbeatState(BaseModel):
    """One monitor's state, as its workflow keeps it (and carries over continue-as-new)."""

    name: str
    monitor: HeartbeatMonitor  # as of the latest ping: a policy edit applies from then
    last_ping_at: datetime | None = None
    pings: int = 0  # in all runs
    missed_at: datetime | None = None  # the incident is open (until the next ping)
    missed_after_ping: int = 0  # ``pings`` when the miss was seen: a later ping resolves it
    misses: int = 0  # incidents opened, in all runs
    removed: bool = False  # the monitor left the policy: the workflow has ended


def allowance(monitor: HeartbeatMonitor) -> timedelta:
    """How long the monitor may stay silent before it is missed."""
    return monitor.period + monitor.grace


def due_by(state: HeartbeatState) -> datetime | None:
    """When silence becomes a miss (None: never pinged)."""
    if state.last_ping_at is None:
        return None
    return state.last_ping_at + allowance(state.monitor)


def is_overdue(state: HeartbeatState, now: datetime) -> bool:
    due = due_by(state)
    return due is not None and now >= due


def status(state: HeartbeatState | None, now: datetime) -> HeartbeatStatus:
    if state is None or state.last_ping_at is None:
        return "waiting"
    if state.missed_at is not None or is_overdue(state, now):
        return "missed"
    if now >= state.last_ping_at + state.monitor.period:
        return "late"
    return "up"


def span(delta: timedelta) -> str:
    """Hours, minutes, seconds as a heartbeat's text counts them: ``26h``, ``1h30m``, ``45s``
    (a day-long period reads ``24h``, as cron schedules are written). Negative: ``0s``."""
    total = max(int(delta.total_seconds()), 0)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def missed_summary(monitor: HeartbeatMonitor, last_ping_at: datetime, now: datetime) -> str:
    """``Heartbeat `nightly-backup` missed: no ping for 26h (period 24h, grace 2h)``."""
    return (
        f"Heartbeat `{monitor.name}` missed: no ping for {span(now - last_ping_at)} "
        f"(period {span(monitor.period)}, grace {span(monitor.grace)})"
    )


def missed_alert(monitor: HeartbeatMonitor, last_ping_at: datetime, now: datetime) -> Alert:
    """The alert a miss raises; it opens (or joins) the monitor's one incident."""
    return Alert(
        source="heartbeat",
        dedup_key=heartbeat_dedup_key(monitor.name),
        summary=missed_summary(monitor, last_ping_at, now),
        service=monitor.service,
        severity=monitor.severity,
        received_at=now,
        detected_at=now,
        labels={"heartbeat": monitor.name},
        details={
            "heartbeat": monitor.name,
            "last_ping_at": last_ping_at.isoformat(),
            "period": format_duration(monitor.period),
            "grace": format_duration(monitor.grace),
        },
    )
