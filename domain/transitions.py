"""How an incident moves: every action and every escalation step as pure code.

Each function takes the incident (the workflow's one copy, changed in place), the policy,
the request and ``now``, and returns the :class:`Effects` for the workflow to carry out:
messages to send, direct pages, and whether the ticket or the review date need refreshing.
A refused action raises :class:`InvalidTransition` before anything has changed.

People lookups (who is on call) are I/O: the workflow resolves them in an activity and
passes the :class:`Person` in (see :func:`person_needed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.escalation import Step, StepKind, next_level_after
from domain.incident import (
    AcknowledgeRequest,
    AddResponderRequest,
    EscalateRequest,
    IncidentState,
    LadderRun,
    Page,
    ResolveRequest,
    SeverityChangeRequest,
    Status,
    StatusUpdateRequest,
    TicketEdit,
    TicketFields,
    TimelineEntry,
)
from domain.maintenance import not_paged_text, released_text
from domain.messages import (
    AcknowledgedMessage,
    EscalatedMessage,
    InformMessage,
    InitialAlertMessage,
    LadderExhaustedMessage,
    LadderRepeatMessage,
    MessageParams,
    NoProgressMessage,
    P3ReviewMessage,
    PageMessage,
    ResolutionMessage,
    ResponderAddedMessage,
    SeverityChangedMessage,
    StakeholderNoticeMessage,
    StatusUpdateMessage,
    UpdateOverdueMessage,
    UpdateReminderMessage,
)
from domain.policy import ROLE_TITLES, Person, Policy, Role, SeverityPolicy


class InvalidTransition(ValueError):
    """The action is not allowed now (resolved already, not on the roster, ...)."""


@dataclass(frozen=True)
class Outgoing:
    """A message decided: ``step`` makes its idempotency key, ``due`` is when it was due."""

    step: str
    recipient: str  # a roster name, or a channel such as #incidents
    params: MessageParams
    person: Person | None = None
    due: datetime | None = None  # None: now


@dataclass(frozen=True)
class DirectPage:
    """Escalate-now on an acknowledged incident: page the next level at once."""

    key: str
    role: Role
    level: int
    by: str | None
    reason: str | None


@dataclass
class Effects:
    messages: list[Outgoing] = field(default_factory=list)
    pages: list[DirectPage] = field(default_factory=list)
    ticket: bool = False  # the incident ticket must be re-rendered
    review: bool = False  # a P3's next-business-day review date must be looked up
    runbook_runs: list[int] = field(default_factory=list)  # diagnostics runs to start
    mitigations: list[int] = field(default_factory=list)  # approved proposals to carry out
    # Acknowledged by someone the ladder had not paged: find the level they hold
    # (the ladder roles' holders are looked up, then ``place_assignee``).
    place_assignee: bool = False
    paged: bool = False  # the ladder paged someone: the ticket may be rewritten (ticket_due)

    def __iadd__(self, other: Effects) -> Effects:
        self.messages += other.messages
        self.pages += other.pages
        self.ticket |= other.ticket
        self.review |= other.review
        self.place_assignee |= other.place_assignee
        self.paged |= other.paged
        self.runbook_runs += other.runbook_runs
        self.mitigations += other.mitigations
        return self


# ---- checks ----------------------------------------------------------------------------


def check_open(state: IncidentState) -> None:
    if not state.is_open:
        raise InvalidTransition(f"{state.incident_id or 'the incident'} is already resolved")


def check_person(policy: Policy, name: str) -> Person:
    person = policy.roster.person(name)
    if person is None:
        raise InvalidTransition(f"{name!r} is not on the roster")
    return person


def check_actor(state: IncidentState, policy: Policy, by: str | None) -> None:
    """Only people on the roster act, and only on an open incident."""
    check_open(state)
    if by is not None:
        check_person(policy, by)


# ---- people's actions ------------------------------------------------------------------


def open_incident(state: IncidentState, policy: Policy, now: datetime) -> Effects:
    alert = state.alerts[-1] if state.alerts else None
    source = f" ({alert.source})" if alert is not None else ""
    log(state, now, "opened", f"Alert triggered: {state.summary}{source}")
    review = policy.for_severity(state.severity).next_business_day_review
    if state.paging_hold is not None:  # in maintenance: recorded, nothing said anywhere yet
        log(state, now, "maintenance", not_paged_text(state.paging_hold, now))
        return Effects(ticket=True, review=review)
    return Effects(messages=[_initial(policy)], ticket=True, review=review)


def _initial(policy: Policy) -> Outgoing:
    return Outgoing("initial", policy.channels.incidents, InitialAlertMessage())


def quiet_while_held(
    state: IncidentState, policy: Policy, messages: list[Outgoing]
) -> list[Outgoing]:
    """While its paging is held the incident has not been announced: nothing is posted to
    the team's channels (an acknowledgement by a tool, an update, a mitigation). People
    addressed by name (a responder added) still hear; the timeline keeps everything."""
    if state.paging_hold is None:
        return messages
    channels = {policy.channels.incidents, policy.channels.stakeholders}
    return [m for m in messages if m.recipient not in channels]


def release_paging(
    state: IncidentState, policy: Policy, now: datetime, by: str | None = None, early: bool = False
) -> Effects:
    """The maintenance window is over and the incident is still open: it starts as a new
    incident would, its #incidents post and its ladder from now."""
    hold = state.paging_hold
    if hold is None or not state.is_open:
        return Effects()
    state.paging_hold = None
    state.ladder = LadderRun(epoch=state.ladder.epoch + 1, anchor=now, start_level=0)
    state.replanned_at = now
    log(state, now, "maintenance", released_text(hold, by=by, early=early), by)
    return Effects(messages=[_initial(policy)], ticket=True)


def acknowledge(
    state: IncidentState, policy: Policy, req: AcknowledgeRequest, now: datetime
) -> Effects:
    """The first acknowledgement owns the incident; a second one changes nothing."""
    check_actor(state, policy, req.by)
    return acknowledge_as(state, policy, req.by, now)


def acknowledge_from_source(
    state: IncidentState, policy: Policy, who: str, now: datetime
) -> Effects:
    """PagerDuty-style: the monitoring tool acknowledged, attributed to the integration;
    the paged person keeps the incident (and its update reminders), as in PagerDuty."""
    if not state.is_open:
        return Effects()
    return _acknowledged(state, policy, who, state.assignee, now)


def acknowledge_as(state: IncidentState, policy: Policy, by: str, now: datetime) -> Effects:
    return _acknowledged(state, policy, by, by, now)


def _acknowledged(
    state: IncidentState, policy: Policy, by: str, owner: str | None, now: datetime
) -> Effects:
    """``by`` acknowledges; ``owner`` holds the incident from now on."""
    if state.acknowledged_at is not None:
        return Effects()
    state.acknowledged_at = now
    state.acknowledged_by = by
    state.assignee = owner
    levels = [page.level for page in state.pages if page.person == state.assignee]
    # Not paged (they saw #incidents first): at least as far up as the ladder has gone, and
    # the level they hold once it is looked up, so that escalate and an overdue update go
    # above them, never back down to someone below.
    unpaged = not levels and policy.roster.person(owner or "") is not None
    state.assignee_level = max(levels) if levels else _paged_so_far(state)
    _add_responder(state, policy, by)
    set_status(
        state, now, Status.INVESTIGATING, by, f"Incident acknowledged by {label(policy, by)}"
    )
    message = Outgoing("ack", policy.channels.incidents, AcknowledgedMessage(by=by))
    return Effects(messages=[message], ticket=True, place_assignee=unpaged)


# With real channels a ticket write is one more activity (and its text in the history) per
# step; in a storm of ladders those add up, so ladder pages rewrite it at most this often.
TICKET_AFTER_PAGES = timedelta(minutes=5)


def ticket_due(state: IncidentState, effects: Effects, now: datetime) -> bool:
    """Whether this step rewrites the ticket (and the incident record the reports read).

    People's actions, severity changes and the resolution always do. A ladder page does
    too: at once where the ticket goes out with the step's notifications in one local write
    (the embedded default); with real channels, when the last write is
    ``TICKET_AFTER_PAGES`` old (every page of a 15-minute ladder, not every step of a
    storm)."""
    if effects.ticket:
        return True
    if not effects.paged:
        return False
    last = state.ticket_written_at
    return state.local_delivery or last is None or now - last >= TICKET_AFTER_PAGES


def place_assignee(state: IncidentState, holders: dict[int, str]) -> None:
    """The assignee's ladder level from who holds each level (``holders``: level → name):
    the highest they hold, never below how far the ladder had gone."""
    held = [level for level, name in holders.items() if name == state.assignee]
    levels = [lvl for lvl in (state.assignee_level, *held) if lvl is not None]
    state.assignee_level = max(levels) if levels else None


def _paged_so_far(state: IncidentState) -> int | None:
    """The highest level paged in the current ladder run (None before its first page)."""
    run = [p.level for p in state.pages if p.at >= state.ladder.anchor]
    return max(run) if run else None


def post_update(
    state: IncidentState, policy: Policy, req: StatusUpdateRequest, now: datetime
) -> Effects:
    """A status update is progress; the first one also acknowledges."""
    check_actor(state, policy, req.by)
    effects = acknowledge_as(state, policy, req.by, now)
    state.last_update_at = now
    state.last_update_text = req.message
    # The Update template's next steps and ETA hold until a later update says otherwise.
    state.next_steps = req.next_steps or state.next_steps
    state.eta = req.eta or state.eta
    _add_responder(state, policy, req.by)
    if req.status == Status.MITIGATING and state.mitigated_at is None:
        # Said by a person, also while an action runs (the status is Mitigating already).
        state.mitigated_at = now
        log(state, now, "mitigation", "Mitigation implemented", req.by)
    if req.status is not None and req.status != state.status:
        set_status(state, now, req.status, req.by)
    log(state, now, "update", req.message, req.by)
    step = f"update:{len(state.timeline)}"
    update = StatusUpdateMessage(
        by=req.by, message=req.message, next_steps=state.next_steps, eta=state.eta
    )
    effects.messages.append(Outgoing(step, policy.channels.incidents, update))
    if policy.for_severity(state.severity).stakeholder_deadline is not None:
        # A human update to stakeholders meets their deadline: no templated notice needed.
        state.stakeholders_informed_at = state.stakeholders_informed_at or now
        effects.messages.append(Outgoing(step, policy.channels.stakeholders, update))
    effects.ticket = True
    return effects


def change_severity(
    state: IncidentState, policy: Policy, req: SeverityChangeRequest, now: datetime
) -> Effects:
    """Every timer is re-planned from now under the new severity's rules."""
    check_actor(state, policy, req.by)
    if req.severity == state.severity:
        # Said, not silently ignored: a reply of "changed" would not be true.
        raise InvalidTransition(f"{state.incident_id} is already {req.severity.value}")
    old = state.severity
    state.severity = req.severity
    state.replanned_at = now
    state.ladder = LadderRun(epoch=state.ladder.epoch + 1, anchor=now, start_level=0)
    state.review_at = None
    _add_responder(state, policy, req.by)
    log(state, now, "severity", f"Severity changed {old.value} → {req.severity.value}", req.by)
    changed = SeverityChangedMessage(old=old, by=req.by)
    return Effects(
        messages=[Outgoing(f"severity:{len(state.timeline)}", policy.channels.incidents, changed)],
        ticket=True,
        review=policy.for_severity(req.severity).next_business_day_review,
    )


def escalate(state: IncidentState, policy: Policy, req: EscalateRequest, now: datetime) -> Effects:
    """Unacknowledged: restart the ladder at the next level now. Acknowledged: page the level
    above the assignee at once, without touching the ladder."""
    check_actor(state, policy, req.by)
    sp = policy.for_severity(state.severity)
    if not sp.ladder:
        raise InvalidTransition(
            f"{state.severity.value} has no escalation ladder; raise the severity first"
        )
    reached = _level_reached(state)
    if reached is not None and reached >= len(sp.ladder) - 1:
        # Not round to the primary again: a person asking for more help wants someone new.
        title = ROLE_TITLES[sp.ladder[-1].target]
        raise InvalidTransition(
            f"{state.incident_id} is at the last level of the {state.severity.value} ladder"
            f" ({title}): there is nobody above to escalate to; add a responder to bring"
            " someone in"
        )
    reason = f": {req.reason}" if req.reason else ""
    # A person asks for pages: held for maintenance or not, the incident starts paging.
    effects = release_paging(state, policy, now, req.by, early=True)
    if state.status == Status.TRIGGERED:
        following = reached + 1 if reached is not None else 0
        state.ladder = LadderRun(epoch=state.ladder.epoch + 1, anchor=now, start_level=following)
        title = ROLE_TITLES[sp.ladder[following].target]
        log(state, now, "escalate", f"Escalated now to {title}{reason}", req.by)
        return effects
    level = next_level_after(sp, reached)
    assert level is not None  # the ladder is not empty
    role = sp.ladder[level].target
    log(state, now, "escalate", f"Escalated to {ROLE_TITLES[role]}{reason}", req.by)
    page = DirectPage(f"escalate:{len(state.timeline)}", role, level, req.by, req.reason)
    effects.pages.append(page)
    return effects


def _level_reached(state: IncidentState) -> int | None:
    """How far up the ladder the incident has gone. Unacknowledged: the level paged last in
    the current ladder run (before its first page, the level it is about to page).
    Acknowledged: the assignee's level, or higher if escalate has paged above it since."""
    if state.status == Status.TRIGGERED:
        run = [p for p in state.pages if p.at >= state.ladder.anchor]
        if run:
            return run[-1].level
        return state.ladder.start_level
    acked = state.acknowledged_at
    escalated = [
        p.level
        for p in state.pages
        if p.step.startswith("escalate:") and acked is not None and p.at >= acked
    ]
    levels = [lvl for lvl in (state.assignee_level, *escalated) if lvl is not None]
    return max(levels) if levels else None


def add_responder(
    state: IncidentState, policy: Policy, req: AddResponderRequest, now: datetime
) -> Effects:
    check_actor(state, policy, req.by)
    person = check_person(policy, req.person)
    if person.name in state.responders:
        return Effects()
    _add_responder(state, policy, person.name)
    log(state, now, "responder", f"{person.label} added as responder", req.by)
    added = ResponderAddedMessage(person=person.name, by=req.by)
    return Effects(messages=[Outgoing(f"responder:{person.name}", person.name, added, person)])


def resolve(state: IncidentState, policy: Policy, req: ResolveRequest, now: datetime) -> Effects:
    check_actor(state, policy, req.by)
    _add_responder(state, policy, req.by)
    state.resolved_at = now
    state.resolved_by = req.by
    state.root_cause = req.root_cause
    state.fix = req.fix
    state.false_positive = req.false_positive
    if req.ticket is not None:
        set_ticket(state, policy, req.ticket, req.by, now)
    suffix = " (false positive)" if req.false_positive else ""
    set_status(
        state, now, Status.RESOLVED, req.by, f"Issue resolved by {label(policy, req.by)}{suffix}"
    )
    return Effects(ticket=True)


def resolve_from_source(state: IncidentState, policy: Policy, who: str, now: datetime) -> Effects:
    """The monitoring tool says the alert cleared (auto-resolve)."""
    if not state.is_open:
        return Effects()
    state.resolved_at = now
    state.resolved_by = who
    state.root_cause = "Alert cleared at the source (auto-resolve)"
    state.fix = "Recovered without intervention"
    set_status(state, now, Status.RESOLVED, who, f"Issue resolved by {who}")
    return Effects(ticket=True)


def resolution(state: IncidentState, policy: Policy, review_at: datetime | None) -> Effects:
    """The resolution notice (with the post-mortem's date or why there is none); none for
    an incident held by maintenance, which was never announced."""
    if state.paging_hold is not None:
        return Effects(ticket=True)
    postmortem = (
        f"Review scheduled {review_at:%Y-%m-%d %H:%M} UTC"
        if review_at
        else f"Not required for {state.severity.value}"
    )
    notice = ResolutionMessage(postmortem=postmortem)
    messages = [Outgoing("resolved", policy.channels.incidents, notice)]
    if policy.for_severity(state.severity).stakeholder_deadline is not None:
        messages.append(Outgoing("resolved", policy.channels.stakeholders, notice))
    return Effects(messages=messages, ticket=True)


# ---- escalation steps ------------------------------------------------------------------


def person_needed(step: Step, state: IncidentState, policy: Policy) -> Role | None:
    """The role whose holder must be looked up before ``step`` can be carried out."""
    if step.kind in (StepKind.PAGE, StepKind.INFORM, StepKind.NO_PROGRESS):
        return step.role
    if step.kind == StepKind.UPDATE_OVERDUE:
        return overdue_role(state, policy.for_severity(state.severity))
    if step.kind == StepKind.UPDATE_REMINDER and _roster_assignee(state, policy) is None:
        return Role.PRIMARY  # nobody holds it (a tool acknowledged before any page)
    return None


def _roster_assignee(state: IncidentState, policy: Policy) -> Person | None:
    return policy.roster.person(state.assignee) if state.assignee else None


def overdue_role(state: IncidentState, sp: SeverityPolicy) -> Role:
    """An overdue update is reported one level above the assignee (the team lead without one)."""
    level = next_level_after(sp, state.assignee_level)
    return sp.ladder[level].target if level is not None else Role.TEAM_LEAD


def carry_out(step: Step, state: IncidentState, policy: Policy, person: Person | None) -> Effects:
    """What a due step does. ``person`` holds ``person_needed(step, ...)`` at ``step.at``."""
    sp = policy.for_severity(state.severity)
    at = step.at
    channels = policy.channels
    if step.kind == StepKind.PAGING_RELEASE:
        return release_paging(state, policy, at)
    if step.kind == StepKind.PAGE:
        assert person is not None and step.role is not None and step.level is not None
        return _page(state, sp, step.key, step.role, step.level, at, person)
    if step.kind in (StepKind.INFORM, StepKind.NO_PROGRESS):
        assert person is not None and step.role is not None
        inform = step.kind == StepKind.INFORM
        verb = "Informed" if inform else "No progress: paged"
        log(state, at, step.kind.value, f"{verb} {person.label} ({ROLE_TITLES[step.role]})")
        model = InformMessage if inform else NoProgressMessage
        params = model(person=person.name, role=step.role)
        return _to(step, person.name, params, person)
    if step.kind == StepKind.LADDER_REPEAT:
        loop = (step.loop or 0) + 1
        text = f"repeating the escalation ladder (pass {loop} of {sp.loops})"
        log(state, at, step.kind.value, f"Nobody has acknowledged: {text}")
        return _to(step, channels.incidents, LadderRepeatMessage(loop=loop))
    if step.kind == StepKind.LADDER_EXHAUSTED:
        text = "Nobody has acknowledged: the escalation ladder is exhausted"
        log(state, at, step.kind.value, text)
        return _to(step, channels.incidents, LadderExhaustedMessage())
    if step.kind == StepKind.UPDATE_REMINDER:
        assignee = _roster_assignee(state, policy)
        if assignee is None:
            assert person is not None  # the primary, by person_needed
            who = f"{person.label} ({ROLE_TITLES[Role.PRIMARY]}: nobody holds the incident)"
            log(state, at, step.kind.value, f"Status update reminder sent to {who}")
            return _to(step, person.name, UpdateReminderMessage(), person)
        log(state, at, step.kind.value, f"Status update reminder sent to {assignee.label}")
        return _to(step, assignee.name, UpdateReminderMessage(), assignee)
    if step.kind == StepKind.UPDATE_OVERDUE:
        assert person is not None
        role = overdue_role(state, sp)
        text = f"Status update overdue: reported to {person.label} ({ROLE_TITLES[role]})"
        log(state, at, step.kind.value, text)
        return _to(step, person.name, UpdateOverdueMessage(person=person.name, role=role), person)
    if step.kind == StepKind.STAKEHOLDER_NOTICE:
        state.stakeholders_informed_at = at
        log(state, at, step.kind.value, "Stakeholders informed (templated notice at the deadline)")
        return _to(step, channels.stakeholders, StakeholderNoticeMessage())
    assert step.kind == StepKind.P3_REVIEW
    log(state, at, step.kind.value, "Next-business-day review is due")
    return _to(step, channels.incidents, P3ReviewMessage())


def direct_page(
    state: IncidentState, policy: Policy, page: DirectPage, person: Person, now: datetime
) -> Effects:
    """Carry out an escalate-now on an acknowledged incident."""
    state.pages.append(
        Page(at=now, person=person.name, role=page.role, level=page.level, step=page.key)
    )
    log(
        state,
        now,
        "page",
        f"Paged {person.label} ({ROLE_TITLES[page.role]}, level {page.level + 1})",
    )
    params = EscalatedMessage(person=person.name, role=page.role, by=page.by, reason=page.reason)
    # The ticket and the incident record (the reports' figures) show every page at once.
    return Effects(messages=[Outgoing(page.key, person.name, params, person, now)], ticket=True)


# ---- small helpers ---------------------------------------------------------------------


def _page(
    state: IncidentState,
    sp: SeverityPolicy,
    key: str,
    role: Role,
    level: int,
    at: datetime,
    person: Person,
) -> Effects:
    _record_page(state, key, role, level, at, person)
    if state.status == Status.TRIGGERED:
        state.assignee = person.name  # PagerDuty-style: the paged person holds it until acked
    window: timedelta = sp.ladder[level].window
    params = PageMessage(person=person.name, role=role, level=level + 1, window=window)
    return Effects(messages=[Outgoing(key, person.name, params, person, at)], paged=True)


def _record_page(
    state: IncidentState, key: str, role: Role, level: int, at: datetime, person: Person
) -> None:
    state.pages.append(Page(at=at, person=person.name, role=role, level=level, step=key))
    log(state, at, "page", f"Paged {person.label} ({ROLE_TITLES[role]}, level {level + 1})")


def _to(step: Step, recipient: str, params: MessageParams, person: Person | None = None) -> Effects:
    return Effects(messages=[Outgoing(step.key, recipient, params, person, step.at)])


def log(state: IncidentState, at: datetime, kind: str, text: str, by: str | None = None) -> None:
    state.timeline.append(TimelineEntry(at=at, kind=kind, text=text, by=by))


def set_status(
    state: IncidentState, now: datetime, status: Status, by: str | None, text: str | None = None
) -> None:
    state.status = status
    log(state, now, "status", text or f"Status → {status.value}", by)


def _add_responder(state: IncidentState, policy: Policy, name: str) -> None:
    if policy.roster.person(name) is not None and name not in state.responders:
        state.responders.append(name)


def label(policy: Policy, name: str) -> str:
    person = policy.roster.person(name)
    return person.label if person is not None else name


def edit_ticket(state: IncidentState, policy: Policy, req: TicketEdit, now: datetime) -> Effects:
    """Set ticket fields (the Incident Report's impact, cause, actions, prevention and
    lessons), during the incident and after its resolution while its workflow still runs;
    the timeline says who set which, and the ticket is written again."""
    check_person(policy, req.by)
    if not set_ticket(state, policy, req, req.by, now):
        raise InvalidTransition("say which ticket fields to set (e.g. user_impact)")
    return Effects(ticket=True)


def set_ticket(
    state: IncidentState, policy: Policy, fields: TicketFields, by: str, now: datetime
) -> bool:
    """Set the fields given (not None), with a timeline entry; False: none were given."""
    # Fields left out arrive as None (requests cross Temporal as JSON): unchanged.
    given = {
        name: value
        for name, value in fields.model_dump().items()
        if value is not None and name in TicketFields.model_fields
    }
    if not given:
        return False
    state.ticket = state.ticket.model_copy(update=given)
    names = ", ".join(name.replace("_", " ") for name in given)
    log(state, now, "ticket", f"Ticket: {names} set by {label(policy, by)}", by)
    return True


def with_closed_edits(
    state: IncidentState, policy: Policy, edits: list[tuple[datetime, TicketEdit]]
) -> IncidentState:
    """A closed incident's final state with the ticket edits made after it closed."""
    if not edits:
        return state
    merged = state.model_copy(deep=True)
    for at, edit in edits:
        set_ticket(merged, policy, edit, edit.by, at)
    return merged
