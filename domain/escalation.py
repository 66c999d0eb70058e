"""Escalation arithmetic: what must happen to an incident, and when.

The workflow asks :func:`plan` after every change and every timer. Each step has a
stable key; the workflow records keys it has carried out, so a step fires once even
when the plan is recomputed, and a re-planned ladder (severity change, escalate now)
gets fresh keys through its epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from domain.incident import IncidentState, Status
from domain.policy import ROLE_TITLES, Role, SeverityPolicy


class StepKind(StrEnum):
    PAGE = "page"
    INFORM = "inform"
    LADDER_REPEAT = "ladder_repeat"
    LADDER_EXHAUSTED = "ladder_exhausted"
    NO_PROGRESS = "no_progress"
    UPDATE_REMINDER = "update_reminder"
    UPDATE_OVERDUE = "update_overdue"
    STAKEHOLDER_NOTICE = "stakeholder_notice"
    P3_REVIEW = "p3_review"
    PROPOSAL_EXPIRY = "proposal_expiry"  # a mitigation nobody approved in time
    PAGING_RELEASE = "paging_release"  # the maintenance window is over: the ladder starts


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    at: datetime
    kind: StepKind
    role: Role | None = None
    level: int | None = None
    loop: int | None = None
    proposal: int | None = None  # PROPOSAL_EXPIRY: the mitigation proposal's number

    def describe(self) -> str:
        who = f" {self.role.value}" if self.role else ""
        return f"{self.kind.value}{who}"

    @property
    def label(self) -> str:
        """As people read it: "page Secondary On-Call", "update reminder"."""
        what = self.kind.value.replace("_", " ")
        return f"{what} {ROLE_TITLES[self.role]}" if self.role is not None else what


class Plan(BaseModel):
    due: list[Step]  # time has come and not yet carried out, oldest first
    next: Step | None  # the earliest step still in the future
    live_keys: frozenset[str]  # keys the plan can still produce; older ones may be forgotten


def _ladder(state: IncidentState, policy: SeverityPolicy) -> Iterator[Step]:
    if state.status != Status.TRIGGERED or not policy.ladder:
        return
    run = state.ladder
    at = run.anchor
    for loop in range(policy.loops):
        start = run.start_level if loop == 0 else 0
        if loop > 0:
            yield Step(
                key=f"repeat:e{run.epoch}:l{loop}", at=at, kind=StepKind.LADDER_REPEAT, loop=loop
            )
        for index in range(start, len(policy.ladder)):
            level = policy.ladder[index]
            yield Step(
                key=f"page:e{run.epoch}:l{loop}:{index}",
                at=at,
                kind=StepKind.PAGE,
                role=level.target,
                level=index,
                loop=loop,
            )
            at += level.window
    yield Step(key=f"exhausted:e{run.epoch}", at=at, kind=StepKind.LADDER_EXHAUSTED)


def _inform(state: IncidentState, policy: SeverityPolicy) -> Iterator[Step]:
    for role in policy.inform_at_open:
        key = f"inform:{state.severity.value}:{role.value}"
        yield Step(key=key, at=state.replanned_at, kind=StepKind.INFORM, role=role)


def _no_progress(state: IncidentState, policy: SeverityPolicy) -> Iterator[Step]:
    """A standing rule: every piece of progress (ack, update, mitigation) restarts the clock,
    and each quiet spell of ``no_progress_after`` pages the policy's roles once."""
    progress = state.last_progress_at
    if policy.no_progress_after is None or progress is None or state.status == Status.TRIGGERED:
        return
    anchor = max(progress, state.replanned_at)
    for role in policy.no_progress_page:
        yield Step(
            key=f"noprogress:{anchor.isoformat()}:{role.value}",
            at=anchor + policy.no_progress_after,
            kind=StepKind.NO_PROGRESS,
            role=role,
        )


def _cadence(state: IncidentState, policy: SeverityPolicy, now: datetime) -> Iterator[Step]:
    remind, overdue = policy.update_reminder_after, policy.update_overdue_after
    if remind is None or overdue is None or state.acknowledged_at is None:
        return
    anchor = max(
        state.acknowledged_at, state.last_update_at or state.acknowledged_at, state.replanned_at
    )
    # Only the current period matters: after downtime, old reminders are not worth sending.
    period = max(0, (now - anchor) // overdue)
    start = anchor + period * overdue
    tag = anchor.isoformat()
    yield Step(key=f"remind:{tag}:{period}", at=start + remind, kind=StepKind.UPDATE_REMINDER)
    if period > 0:
        yield Step(key=f"overdue:{tag}:{period - 1}", at=start, kind=StepKind.UPDATE_OVERDUE)
    yield Step(key=f"overdue:{tag}:{period}", at=start + overdue, kind=StepKind.UPDATE_OVERDUE)


def _stakeholders(state: IncidentState, policy: SeverityPolicy) -> Iterator[Step]:
    if policy.stakeholder_deadline is None or state.stakeholders_informed_at is not None:
        return
    yield Step(
        key=f"stakeholders:{state.severity.value}",
        at=state.replanned_at + policy.stakeholder_deadline,
        kind=StepKind.STAKEHOLDER_NOTICE,
    )


def _review(state: IncidentState, policy: SeverityPolicy) -> Iterator[Step]:
    if policy.next_business_day_review and state.review_at is not None:
        key = f"review:{state.review_at.isoformat()}"
        yield Step(key=key, at=state.review_at, kind=StepKind.P3_REVIEW)


def _proposal_expiries(state: IncidentState) -> Iterator[Step]:
    for proposal in state.mitigations:
        if proposal.waiting and proposal.expires_at is not None:
            yield Step(
                key=f"expire:{proposal.number}",
                at=proposal.expires_at,
                kind=StepKind.PROPOSAL_EXPIRY,
                proposal=proposal.number,
            )


def _held(state: IncidentState) -> Iterator[Step]:
    """Opened during maintenance: nothing but the release at the window's end (and
    mitigation proposals expiring), so nobody is paged, informed or reminded until then."""
    hold = state.paging_hold
    assert hold is not None
    yield Step(key=f"release:w{hold.window}", at=hold.until, kind=StepKind.PAGING_RELEASE)
    yield from _proposal_expiries(state)


def plan(state: IncidentState, policy: SeverityPolicy, now: datetime) -> Plan:
    if not state.is_open:
        return Plan(due=[], next=None, live_keys=frozenset())
    steps = (
        [*_held(state)]
        if state.paging_hold is not None
        else [
            *_inform(state, policy),
            *_ladder(state, policy),
            *_no_progress(state, policy),
            *_cadence(state, policy, now),
            *_stakeholders(state, policy),
            *_review(state, policy),
            *_proposal_expiries(state),
        ]
    )
    fired = set(state.fired)
    pending = [s for s in steps if s.key not in fired]
    due = sorted((s for s in pending if s.at <= now), key=lambda s: s.at)
    future = [s for s in pending if s.at > now]
    upcoming = min(future, key=lambda s: s.at) if future else None
    return Plan(due=due, next=upcoming, live_keys=frozenset(s.key for s in steps))


def next_level_after(policy: SeverityPolicy, level: int | None) -> int | None:
    """The ladder level above ``level`` (for escalate-now and overdue reports)."""
    if not policy.ladder:
        return None
    if level is None:
        return 0
    return min(level + 1, len(policy.ladder) - 1)


def offset(state: IncidentState, at: datetime) -> timedelta:
    return at - state.opened_at
