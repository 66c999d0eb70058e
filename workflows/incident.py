"""IncidentWorkflow: one durable workflow per incident, from first alert to resolution.

It sleeps until the next step of the plan (``domain.escalation``), carries steps out
through activities, and applies what people do (ack, updates, severity, resolve) as
validated updates. The event history reads as the incident's timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.channels.snapshot import incident_snapshot
    from activities.documents import DocumentActivities
    from activities.models import (
        NextBusinessDay,
        Notification,
        OpenIncident,
        PublishLocally,
        ResolveOncall,
        ReviewSlot,
        WriteDocument,
    )
    from activities.opening import OpeningActivities
    from activities.people import next_business_day, postmortem_review_slot, resolve_oncall
    from activities.publish import PublishActivities
    from domain.delivery import moot_reason
    from domain.escalation import Step, StepKind, next_level_after, plan
    from domain.ids import postmortem_workflow_id
    from domain.incident import (
        AcknowledgeRequest,
        AddResponderRequest,
        Alert,
        AlertAcknowledgeRequest,
        AlertResolveRequest,
        EscalateRequest,
        IncidentInput,
        IncidentState,
        LadderRun,
        Page,
        ResolveRequest,
        SeverityChangeRequest,
        Status,
        StatusUpdateRequest,
        TimelineEntry,
    )
    from domain.policy import ROLE_TITLES, Channels, Person, Policy, Role, SeverityPolicy
    from domain.templates import MessageKind, render_incident_report, render_message
    from workflows import search_attributes as sa
    from workflows.deliveries import Deliveries
    from workflows.postmortem import PostMortemInput, PostMortemWorkflow
    from workflows.slack_sync import SlackSync

# Quick calls (policy, ids, people, calendar, ticket) run as local activities: they only touch
# the worker's own files and clock, so they skip the server round trip of a normal activity.
_LOCAL = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30)),
}
_KEPT_ALERTS = 20
# Resolved with notifications still on their way (a channel is down): wait this long at most
# before the run ends. A new alert for the same key does not wait: paging comes first.
_SETTLE_WITHIN = timedelta(minutes=30)
_TICKET = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30)),
}


class InvalidTransition(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="InvalidTransition", non_retryable=True)


@dataclass
class _Outgoing:
    """A notification decided by a handler, sent by the main loop in order."""

    kind: MessageKind
    step: str
    recipient: str
    person: Person | None = None
    extra: dict[str, str] = field(default_factory=dict)


@workflow.defn
class IncidentWorkflow:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._state: IncidentState | None = inp.state
        self._policy: Policy | None = inp.policy
        self._inbox: list[Alert] = list(inp.pending_alerts)
        self._source_actions: list[AlertResolveRequest | AlertAcknowledgeRequest] = []
        self._outgoing: list[_Outgoing] = []
        self._ticket_dirty = False
        self._review_dirty = False
        self._wake = False
        self._published: dict[str, object] = {}
        self._direct_pages: list[tuple[str, Role, int]] = []  # escalate-now on an acked incident
        self._pending: list[tuple[Notification, MessageKind]] = []  # rendered, not sent yet
        self._holders: dict[tuple[Role, datetime], Person] = {}  # lookups this run made
        self._timer: asyncio.Future[None] | None = None  # the pending wake-up
        self._timer_at = datetime.min
        self._deliveries = Deliveries(self._log_system)
        self._slack = SlackSync(self._log_system)
        self._background: set[asyncio.Future[None]] = set()  # ticket writes on real channels

    # ---- queries ---------------------------------------------------------------------

    @workflow.query
    def state(self) -> IncidentState | None:
        return self._state

    # ---- signals: machines (alerts) ----------------------------------------------------

    @workflow.signal
    def attach_alert(self, alert: Alert) -> None:
        st = self._state
        if st is not None and st.is_open:
            self._keep_alert(alert)  # a joining alert changes no timer: let the loop sleep
            return
        self._inbox.append(alert)
        self._wake = True

    @workflow.signal
    def resolve_from_source(self, request: AlertResolveRequest) -> None:
        self._source_actions.append(request)
        self._wake = True

    @workflow.signal
    def acknowledge_from_source(self, request: AlertAcknowledgeRequest) -> None:
        """PagerDuty-style: the monitoring tool acknowledged; attributed to the integration."""
        self._source_actions.append(request)
        self._wake = True

    # ---- updates: people ---------------------------------------------------------------

    @workflow.update
    async def opened(self) -> IncidentState:
        """Wait until the incident has its id."""
        return await self._ready()

    @workflow.update
    async def trigger(self, alert: Alert) -> IncidentState:
        """Attach an alert and wait for the incident id (update-with-start: one round trip)."""
        self.attach_alert(alert)
        return await self._ready()

    @workflow.update
    async def acknowledge(self, req: AcknowledgeRequest) -> IncidentState:
        st = await self._ready()
        self._check(req.by)
        if st.acknowledged_at is None:  # a double click is harmless
            self._acknowledge(req.by)
            self._changed()
        return st

    @acknowledge.validator
    def _validate_acknowledge(self, req: AcknowledgeRequest) -> None:
        self._precheck(req.by)

    @workflow.update
    async def post_update(self, req: StatusUpdateRequest) -> IncidentState:
        st = await self._ready()
        self._check(req.by)
        now = workflow.now()
        if st.acknowledged_at is None:
            self._acknowledge(req.by)  # whoever posts the first update owns the incident
        st.last_update_at = now
        st.last_update_text = req.message
        self._responder(req.by)
        if req.status is not None and req.status != st.status:
            if req.status == Status.MITIGATING and st.mitigated_at is None:
                st.mitigated_at = now
                self._log("mitigation", "Mitigation implemented", req.by)
            self._set_status(req.status, req.by)
        self._log("update", req.message, req.by)
        sp = self._severity_policy()
        extra = {"message": req.message}
        self._send(
            MessageKind.STATUS_UPDATE,
            f"update:{len(st.timeline)}",
            self._channels.incidents,
            extra=extra,
        )
        if sp.stakeholder_deadline is not None:
            # A human update to stakeholders meets their deadline: no templated notice needed.
            st.stakeholders_informed_at = st.stakeholders_informed_at or now
            self._send(
                MessageKind.STATUS_UPDATE,
                f"update:{len(st.timeline)}",
                self._channels.stakeholders,
                extra=extra,
            )
        self._ticket_dirty = True
        self._changed()
        return st

    @post_update.validator
    def _validate_post_update(self, req: StatusUpdateRequest) -> None:
        self._precheck(req.by)

    @workflow.update
    async def change_severity(self, req: SeverityChangeRequest) -> IncidentState:
        st = await self._ready()
        self._check(req.by)
        if req.severity == st.severity:
            return st
        now = workflow.now()
        old = st.severity
        st.severity = req.severity
        # Every timer is re-planned from now under the new severity's rules.
        st.replanned_at = now
        st.ladder = LadderRun(epoch=st.ladder.epoch + 1, anchor=now, start_level=0)
        st.review_at = None
        self._review_dirty = self._severity_policy().next_business_day_review
        self._responder(req.by)
        self._log("severity", f"Severity changed {old.value} → {req.severity.value}", req.by)
        extra = {"old": old.value, "new": req.severity.value, "by": req.by}
        self._send(
            MessageKind.SEVERITY_CHANGED,
            f"severity:{len(st.timeline)}",
            self._channels.incidents,
            extra=extra,
        )
        self._ticket_dirty = True
        self._changed()
        return st

    @change_severity.validator
    def _validate_change_severity(self, req: SeverityChangeRequest) -> None:
        self._precheck(req.by)

    @workflow.update
    async def escalate(self, req: EscalateRequest) -> IncidentState:
        st = await self._ready()
        if req.by is not None:
            self._check(req.by)
        else:
            self._check_open()
        sp = self._severity_policy()
        if not sp.ladder:
            raise InvalidTransition(
                f"{st.severity.value} has no escalation ladder; raise the severity first"
            )
        now = workflow.now()
        reason = f": {req.reason}" if req.reason else ""
        if st.status == Status.TRIGGERED:
            current = st.pages[-1].level if st.pages else -1
            following = current + 1 if current + 1 < len(sp.ladder) else 0
            st.ladder = LadderRun(epoch=st.ladder.epoch + 1, anchor=now, start_level=following)
            target = sp.ladder[following].target
            self._log("escalate", f"Escalated now to {ROLE_TITLES[target]}{reason}", req.by)
        else:
            level = next_level_after(sp, st.assignee_level)
            assert level is not None
            self._log(
                "escalate", f"Escalated to {ROLE_TITLES[sp.ladder[level].target]}{reason}", req.by
            )
            self._direct_pages.append(
                (f"escalate:{len(st.timeline)}", sp.ladder[level].target, level)
            )
        self._changed()
        return st

    @escalate.validator
    def _validate_escalate(self, req: EscalateRequest) -> None:
        if req.by is not None:
            self._precheck(req.by)
        elif self._state is not None:
            self._check_open()

    @workflow.update
    async def add_responder(self, req: AddResponderRequest) -> IncidentState:
        st = await self._ready()
        self._check_open()
        if req.by is not None:
            self._check_person(req.by)
        person = self._check_person(req.person)
        if person.name not in st.responders:
            self._responder(person.name)
            self._log("responder", f"{person.label} added as responder", req.by)
            extra = {"person": person.label, "by": req.by or "Firewatch"}
            self._send(
                MessageKind.RESPONDER_ADDED, f"responder:{person.name}", person.name, person, extra
            )
            self._changed()
        return st

    @add_responder.validator
    def _validate_add_responder(self, req: AddResponderRequest) -> None:
        self._precheck(req.by)
        if self._policy is not None:
            self._check_person(req.person)

    @workflow.update
    async def resolve(self, req: ResolveRequest) -> IncidentState:
        st = await self._ready()
        self._check(req.by)
        self._responder(req.by)
        self._resolve(req.by, req.root_cause, req.fix, req.false_positive)
        self._changed()
        return st

    @resolve.validator
    def _validate_resolve(self, req: ResolveRequest) -> None:
        self._precheck(req.by)

    # ---- the run -----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        if self._state is None:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox), timeout=timedelta(minutes=5)
                )
            except TimeoutError:
                raise ApplicationError("started without an alert", non_retryable=True) from None
            await self._open(self._inbox.pop(0))
        await self._drive()
        st = self._require()
        await self._close(st)
        if self._inbox:
            # Alerts that arrived after resolution open a new incident (same dedup key).
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(IncidentInput(pending_alerts=self._inbox))
        return st

    async def _open(self, alert: Alert) -> None:
        info = workflow.info()
        now = workflow.now()
        opening = await workflow.execute_local_activity_method(
            OpeningActivities.open_incident,
            OpenIncident(
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                day=now.date(),
                at=now,
                with_policy=self._policy is None,
                summary=alert.summary,
                service=alert.service,
                severity=alert.severity.value,
            ),
            summary=f"Open {alert.severity.value} · {alert.service}: policy, incident id, on call",
            **_LOCAL,
        )
        self._policy = opening.policy or self._policy
        incident_id = opening.incident_id
        self._holders = {(role, now): person for role, person in opening.oncall.items()}
        st = IncidentState(
            workflow_id=info.workflow_id,
            incident_id=incident_id,
            dedup_key=alert.dedup_key,
            service=alert.service,
            summary=alert.summary,
            severity=alert.severity,
            source=alert.source,
            opened_at=now,
            detected_at=alert.detected_at,
            ladder=LadderRun(anchor=now),
            replanned_at=now,
        )
        self._state = st
        st.slack_message = opening.slack_message
        st.local_delivery = opening.local_delivery
        self._keep_alert(alert)
        self._log("opened", f"Alert triggered: {alert.summary} ({alert.source})")
        if self._severity_policy().next_business_day_review:
            self._review_dirty = True
        self._send(MessageKind.INITIAL_ALERT, "initial", self._channels.incidents)
        self._ticket_dirty = True

    async def _drive(self) -> None:
        """Plan, carry out what is due, then send the step's notifications together."""
        st = self._require()
        while True:
            self._wake = False  # cleared first: anything arriving while we await sets it
            self._absorb_alerts()
            self._apply_source_actions()
            self._deliveries.drop_moot(st)
            if not st.is_open:
                return  # _close sends what is pending together with the resolution
            await self._render_outgoing()  # handlers' messages go before the steps' pages
            await self._schedule_review()  # the P3 review step needs its date to be planned
            now = workflow.now()
            current = plan(st, self._severity_policy(), now)
            for step in current.due:
                await self._carry_out(step)
                st.fired.append(step.key)
            if current.due:
                st.fired = [key for key in st.fired if key in current.live_keys]
            await self._flush()
            if current.due or self._wake:
                continue  # re-plan: an ack may have landed while we were paging
            await self._sleep(current.next, now)

    async def _sleep(self, upcoming: Step | None, now: datetime) -> None:
        """Show what comes next, then wait for it or for people, whichever is first.

        The wake-up timer is lazy: a later deadline keeps the earlier timer (its firing only
        re-plans), an earlier one replaces it. So acks, status updates and the resolution
        start and cancel no timers."""
        st = self._require()
        self._publish(upcoming)
        if workflow.info().is_continue_as_new_suggested() and not self._busy:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._wake:  # nothing arrived meanwhile that this run must handle
                workflow.continue_as_new(IncidentInput(state=st, policy=self._policy))
        timer = self._timer if self._timer is not None and not self._timer.done() else None
        if upcoming is not None and (timer is None or upcoming.at < self._timer_at):
            if timer is not None:
                timer.cancel()
            self._timer_at = upcoming.at
            self._timer = timer = asyncio.ensure_future(
                workflow.sleep(
                    max(upcoming.at - now, timedelta(0)),
                    summary=f"Next: {self._label(upcoming)}",
                )
            )
        await workflow.wait_condition(
            lambda: self._wake or (timer is not None and timer.done()),
        )

    async def _close(self, st: IncidentState) -> None:
        assert self._policy is not None
        sp = self._severity_policy()
        review_at: datetime | None = None
        if sp.postmortem_required:
            review_at = await workflow.execute_local_activity(
                postmortem_review_slot,
                ReviewSlot(
                    resolved_at=st.resolved_at or workflow.now(),
                    hours=self._policy.business_hours,
                    review_time=self._policy.postmortem.review_time,
                    within=self._policy.postmortem.review_within,
                ),
                summary="Schedule post-mortem review",
                **_LOCAL,
            )
            st.postmortem_workflow_id = postmortem_workflow_id(self._incident_id)
        note = (
            f"Review scheduled {review_at:%Y-%m-%d %H:%M} UTC"
            if review_at
            else f"Not required for {st.severity.value}"
        )
        self._send(
            MessageKind.RESOLUTION, "resolved", self._channels.incidents, extra={"postmortem": note}
        )
        if sp.stakeholder_deadline is not None:
            self._send(
                MessageKind.RESOLUTION,
                "resolved",
                self._channels.stakeholders,
                extra={"postmortem": note},
            )
        self._ticket_dirty = True
        await self._flush()
        self._publish(None)
        if review_at is not None and st.postmortem_workflow_id is not None:
            try:
                await workflow.start_child_workflow(
                    PostMortemWorkflow.run,
                    PostMortemInput(incident=st, policy=self._policy, review_at=review_at),
                    id=st.postmortem_workflow_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=f"Post-mortem · {self._incident_id} · {st.summary}"[:200],
                )
            except WorkflowAlreadyStartedError:
                # Only when INC ids were reused (the worker lost its data dir): the resolution
                # stands, and the timeline says why no post-mortem started.
                self._log(
                    "postmortem",
                    f"Post-mortem not started: {st.postmortem_workflow_id} already exists",
                )
        await self._settle()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _settle(self) -> None:
        """Let notifications still on their way arrive (a channel may be down), unless a new
        alert for this key is waiting: it opens its incident now."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: not self._busy or bool(self._inbox),
                timeout=_SETTLE_WITHIN,
                timeout_summary="Let the last notifications arrive",
            )
        if self._busy:
            self._log_system("delivery_failed", "Closed with notifications still undelivered")

    @property
    def _busy(self) -> bool:
        self._background = {task for task in self._background if not task.done()}
        return self._deliveries.busy or self._slack.busy or bool(self._background)

    # ---- steps -------------------------------------------------------------------------

    async def _carry_out(self, step: Step) -> None:
        st = self._require()
        sp = self._severity_policy()
        kind = step.kind
        if kind == StepKind.PAGE:
            assert step.role is not None and step.level is not None
            await self._page(step.key, step.role, step.level, step.at, sp)
        elif kind in (StepKind.INFORM, StepKind.NO_PROGRESS):
            assert step.role is not None
            person = await self._holder(step.role, step.at)
            message = MessageKind.INFORM if kind == StepKind.INFORM else MessageKind.NO_PROGRESS
            verb = "Informed" if kind == StepKind.INFORM else "No progress: paged"
            self._log(kind.value, f"{verb} {person.label} ({ROLE_TITLES[step.role]})")
            extra = {"person": person.label, "role": ROLE_TITLES[step.role]}
            await self._deliver(_Outgoing(message, step.key, person.name, person, extra), step.at)
        elif kind in (StepKind.LADDER_REPEAT, StepKind.LADDER_EXHAUSTED):
            message = (
                MessageKind.LADDER_REPEAT
                if kind == StepKind.LADDER_REPEAT
                else MessageKind.LADDER_EXHAUSTED
            )
            text = "Nobody has acknowledged: " + (
                f"repeating the escalation ladder (pass {(step.loop or 0) + 1} of {sp.loops})"
                if kind == StepKind.LADDER_REPEAT
                else "the escalation ladder is exhausted"
            )
            self._log(kind.value, text)
            extra = {
                "loop": str((step.loop or 0) + 1),
                "loops": str(sp.loops),
                "elapsed": str(step.at - st.opened_at),
            }
            await self._deliver(
                _Outgoing(message, step.key, self._channels.incidents, None, extra), step.at
            )
        elif kind == StepKind.UPDATE_REMINDER:
            person = self._person(st.assignee)
            if person is None:  # acknowledged by an integration: nobody on the roster owns it
                self._log(kind.value, f"Status update due; {st.assignee} is not a person to remind")
            else:
                self._log(kind.value, f"Status update reminder sent to {person.label}")
                await self._deliver(
                    _Outgoing(MessageKind.UPDATE_REMINDER, step.key, person.name, person), step.at
                )
        elif kind == StepKind.UPDATE_OVERDUE:
            level = next_level_after(sp, st.assignee_level)
            role = sp.ladder[level].target if level is not None else Role.TEAM_LEAD
            person = await self._holder(role, step.at)
            self._log(
                kind.value,
                f"Status update overdue: reported to {person.label} ({ROLE_TITLES[role]})",
            )
            extra = {
                "person": person.label,
                "role": ROLE_TITLES[role],
                "assignee": st.assignee or "nobody",
            }
            await self._deliver(
                _Outgoing(MessageKind.UPDATE_OVERDUE, step.key, person.name, person, extra), step.at
            )
        elif kind == StepKind.STAKEHOLDER_NOTICE:
            st.stakeholders_informed_at = step.at
            self._log(kind.value, "Stakeholders informed (templated notice at the deadline)")
            await self._deliver(
                _Outgoing(MessageKind.STAKEHOLDER_NOTICE, step.key, self._channels.stakeholders),
                step.at,
            )
        elif kind == StepKind.P3_REVIEW:
            self._log(kind.value, "Next-business-day review is due")
            await self._deliver(
                _Outgoing(MessageKind.P3_REVIEW, step.key, self._channels.incidents), step.at
            )

    async def _page(
        self, key: str, role: Role, level: int, at: datetime, sp: SeverityPolicy
    ) -> None:
        st = self._require()
        person = await self._holder(role, at)
        st.pages.append(Page(at=at, person=person.name, role=role, level=level, step=key))
        if st.status == Status.TRIGGERED:
            st.assignee = person.name  # PagerDuty-style: the paged person holds it until acked
        self._log("page", f"Paged {person.label} ({ROLE_TITLES[role]}, level {level + 1})")
        window = sp.ladder[level].window
        extra = {
            "person": person.label,
            "role": ROLE_TITLES[role],
            "level": str(level + 1),
            "window": _minutes(window),
        }
        await self._deliver(_Outgoing(MessageKind.PAGE, key, person.name, person, extra), at)

    async def _holder(self, role: Role, at: datetime) -> Person:
        assert self._policy is not None
        known = self._holders.get((role, at))
        if known is not None:
            return known
        person = await workflow.execute_local_activity(
            resolve_oncall,
            ResolveOncall(roster=self._policy.roster, role=role, at=at),
            summary=f"Who is {ROLE_TITLES[role]}?",
            **_LOCAL,
        )
        self._holders[(role, at)] = person
        return person

    async def _deliver(self, out: _Outgoing, at: datetime | None = None) -> None:
        """Render a decided notification; it is sent with the rest of the step (_flush)."""
        assert self._policy is not None
        st = self._require()
        now = workflow.now()
        due = at or now
        moot = moot_reason(out.kind, due, st)
        if moot is not None:
            who = out.person.label if out.person is not None else out.recipient
            self._log(
                "delivery_dropped", f"Dropped {out.kind.value.replace('_', ' ')} to {who}: {moot}"
            )
            return
        message = render_message(out.kind, st, self._policy, now, out.extra)
        note = Notification(
            idempotency_key=f"{self._incident_id}:{out.step}:{out.recipient}:outbox",
            incident_id=self._incident_id,
            workflow_id=st.workflow_id,
            kind=out.kind.value,
            recipient=out.recipient,
            person=out.person,
            subject=message.subject,
            text=message.text,
            scheduled_at=due,
            channel_role=(
                None
                if out.person is not None
                else {
                    self._channels.incidents: "incidents",
                    self._channels.stakeholders: "stakeholders",
                }.get(out.recipient)
            ),
        )
        self._pending.append((note, out.kind))

    async def _flush(self) -> None:
        """Send what the step decided. Pages go out first and each on its own; the ticket and
        the Slack message follow beside them, never in front."""
        st = self._require()
        assert self._policy is not None
        # Before anything is sent: whoever gets a message can find the incident by its id.
        self._publish_attributes()
        while self._direct_pages:
            key, role, level = self._direct_pages.pop(0)
            await self._page(key, role, level, workflow.now(), self._severity_policy())
        await self._render_outgoing()
        await self._schedule_review()
        ticket = self._ticket() if self._ticket_dirty else None
        pending, self._pending = self._pending, []
        if st.local_delivery:
            # Outbox only: the step's notifications and the ticket are one local write.
            if pending or ticket is not None:
                notes = [note for note, _ in pending]
                published = await workflow.execute_local_activity_method(
                    PublishActivities.publish_locally,
                    PublishLocally(notifications=notes, document=ticket),
                    summary=", ".join(f"{n.kind} → {n.recipient}" for n in notes)
                    or "Update ticket",
                    **_LOCAL,
                )
                for note, result in zip(notes, published.deliveries, strict=True):
                    self._deliveries.record(note, result)
        else:
            for note, kind in pending:
                self._deliveries.start(note, kind)
            if ticket is not None:
                self._background.add(asyncio.ensure_future(self._write_ticket(ticket)))
        if st.slack_message:
            snapshot = incident_snapshot(st, self._policy, workflow.now())
            self._slack.want(snapshot, after=self._deliveries.incident_message)

    def _ticket(self) -> WriteDocument:
        assert self._policy is not None
        st = self._require()
        self._ticket_dirty = False
        st.ticket_version += 1
        return WriteDocument(
            kind="ticket",
            incident_id=self._incident_id,
            version=st.ticket_version,
            markdown=render_incident_report(st, self._policy, workflow.now()),
        )

    async def _write_ticket(self, ticket: WriteDocument) -> None:
        try:
            await workflow.execute_activity_method(
                DocumentActivities.write_document,
                ticket,
                summary=f"Update ticket (version {ticket.version})",
                **_TICKET,
            )
        except ActivityError as err:
            self._log_system("delivery_failed", f"Could not write the ticket: {err.cause}")

    async def _render_outgoing(self) -> None:
        while self._outgoing:
            await self._deliver(self._outgoing.pop(0))

    async def _schedule_review(self) -> None:
        """P3 (and a severity change to it): the review's next-business-day date."""
        if not self._review_dirty:
            return
        assert self._policy is not None
        st = self._require()
        self._review_dirty = False
        st.review_at = await workflow.execute_local_activity(
            next_business_day,
            NextBusinessDay(at=workflow.now(), hours=self._policy.business_hours),
            summary="Next business day for the review",
            **_LOCAL,
        )
        self._log(
            "review",
            f"Review scheduled for {st.review_at:%Y-%m-%d %H:%M} UTC (next business day)",
        )

    # ---- state changes -----------------------------------------------------------------

    def _absorb_alerts(self) -> None:
        st = self._require()
        while self._inbox and st.is_open:
            self._keep_alert(self._inbox.pop(0))

    def _keep_alert(self, alert: Alert) -> None:
        st = self._require()
        st.alert_count += 1
        st.alerts = [*st.alerts, alert][-_KEPT_ALERTS:]
        if st.detected_at is None and alert.detected_at is not None:
            st.detected_at = alert.detected_at

    def _apply_source_actions(self) -> None:
        st = self._require()
        while self._source_actions:
            action = self._source_actions.pop(0)
            who = action.integration or action.source
            if isinstance(action, AlertAcknowledgeRequest):
                if st.is_open and st.acknowledged_at is None:
                    self._acknowledge(who)
                continue
            if st.is_open:
                self._resolve(
                    who,
                    "Alert cleared at the source (auto-resolve)",
                    "Recovered without intervention",
                    False,
                )

    def _acknowledge(self, by: str) -> None:
        st = self._require()
        st.acknowledged_at = workflow.now()
        st.acknowledged_by = by
        st.assignee = by
        levels = [page.level for page in st.pages if page.person == by]
        st.assignee_level = max(levels) if levels else None
        self._responder(by)
        self._set_status(
            Status.INVESTIGATING, by, text=f"Incident acknowledged by {self._display(by)}"
        )
        self._send(
            MessageKind.ACKNOWLEDGED,
            "ack",
            self._channels.incidents,
            extra={"by": self._display(by)},
        )
        self._wake = True

    def _resolve(self, by: str, root_cause: str, fix: str, false_positive: bool) -> None:
        st = self._require()
        st.resolved_at = workflow.now()
        st.resolved_by = by
        st.root_cause = root_cause
        st.fix = fix
        st.false_positive = false_positive
        suffix = " (false positive)" if false_positive else ""
        self._set_status(Status.RESOLVED, by, text=f"Issue resolved by {self._display(by)}{suffix}")
        self._wake = True

    def _set_status(self, status: Status, by: str | None, text: str | None = None) -> None:
        st = self._require()
        st.status = status
        self._log("status", text or f"Status → {status.value}", by)
        self._ticket_dirty = True

    def _responder(self, name: str) -> None:
        st = self._require()
        if self._person(name) is not None and name not in st.responders:
            st.responders.append(name)

    def _log(self, kind: str, text: str, by: str | None = None) -> None:
        self._require().timeline.append(
            TimelineEntry(at=workflow.now(), kind=kind, text=text, by=by)
        )

    def _log_system(self, kind: str, text: str) -> None:
        """Deliveries and the Slack sync report here when they finish, between steps."""
        self._log(kind, text)
        if self._state is not None and self._state.incident_id is not None:
            self._show_details()

    def _changed(self) -> None:
        """A person acted: the UI, their reply and deliveries in flight follow at once."""
        st = self._require()
        self._deliveries.drop_moot(st)
        upcoming = None
        if st.is_open:
            current = plan(st, self._severity_policy(), workflow.now())
            upcoming = current.due[0] if current.due else current.next
        self._publish(upcoming)
        self._wake = True

    def _send(
        self,
        kind: MessageKind,
        step: str,
        recipient: str,
        person: Person | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self._outgoing.append(_Outgoing(kind, step, recipient, person, extra or {}))
        self._wake = True

    # ---- UI: search attributes, current details ---------------------------------------

    def _publish(self, upcoming: Step | None) -> None:
        st = self._require()
        st.next_step_at = upcoming.at if upcoming else None
        st.next_step_label = self._label(upcoming) if upcoming else None
        self._publish_attributes()
        self._show_details()

    def _show_details(self) -> None:
        """The Temporal UI's current details: what a responder looks at first."""
        st = self._require()
        nxt = (
            f"{st.next_step_label} at {st.next_step_at:%Y-%m-%d %H:%M:%S} UTC"
            if st.next_step_at
            else "none"
        )
        workflow.set_current_details(
            f"**{self._incident_id}** · {st.severity.value} · {st.service}\n\n"
            f"**Status**: {st.status.value}\n\n"
            f"**Assignee**: {st.assignee or 'unassigned'}\n\n"
            f"**Next escalation**: {nxt}"
            + (f"\n\n**Delivery**: {note}" if (note := self._deliveries.problem) else "")
        )

    def _publish_attributes(self) -> None:
        st = self._require()
        wanted: dict[str, object] = {
            "id": st.incident_id,
            "severity": st.severity.value,
            "status": st.status.value,
            "assignee": st.assignee or "",
            "false_positive": st.false_positive,
            "resolved_at": st.resolved_at,
        }
        if wanted == self._published:
            return
        if self._published:
            # Only what changed: visibility rewrites less, the history stays small.
            changed = {key for key, value in wanted.items() if self._published.get(key) != value}
            updates = [
                update
                for key, update in self._attribute_updates(st).items()
                if key in changed and update is not None
            ]
        else:
            updates = [u for u in self._attribute_updates(st).values() if u is not None]
        workflow.upsert_search_attributes(updates)
        self._published = wanted

    def _attribute_updates(self, st: IncidentState) -> dict[str, SearchAttributeUpdate[Any] | None]:
        return {
            "id": sa.INCIDENT_ID.value_set(self._incident_id),
            "severity": sa.INCIDENT_SEVERITY.value_set(st.severity.value),
            "status": sa.INCIDENT_STATUS.value_set(st.status.value),
            "service": sa.INCIDENT_SERVICE.value_set(st.service),
            "dedup_key": sa.INCIDENT_DEDUP_KEY.value_set(st.dedup_key[:200]),
            "source": sa.INCIDENT_SOURCE.value_set(st.source),
            "opened_at": sa.INCIDENT_OPENED_AT.value_set(st.opened_at),
            "false_positive": sa.INCIDENT_FALSE_POSITIVE.value_set(st.false_positive),
            "assignee": sa.INCIDENT_ASSIGNEE.value_set(st.assignee)
            if st.assignee
            else sa.INCIDENT_ASSIGNEE.value_unset(),
            "resolved_at": sa.INCIDENT_RESOLVED_AT.value_set(st.resolved_at)
            if st.resolved_at is not None
            else None,
        }

    def _label(self, step: Step) -> str:
        if step.role is not None:
            return f"{step.kind.value.replace('_', ' ')} {ROLE_TITLES[step.role]}"
        return step.kind.value.replace("_", " ")

    # ---- checks ------------------------------------------------------------------------

    async def _ready(self) -> IncidentState:
        await workflow.wait_condition(
            lambda: self._state is not None and self._state.incident_id is not None
        )
        return self._require()

    def _precheck(self, by: str | None) -> None:
        # Before the incident has opened there is nothing to check yet; handlers re-check.
        if self._state is None or self._policy is None:
            return
        self._check_open()
        if by is not None:
            self._check_person(by)

    def _check(self, by: str) -> None:
        self._check_open()
        self._check_person(by)

    def _check_open(self) -> None:
        st = self._require()
        if not st.is_open:
            raise InvalidTransition(f"{self._incident_id} is already resolved")

    def _check_person(self, name: str) -> Person:
        person = self._person(name)
        if person is None:
            raise InvalidTransition(f"{name!r} is not on the roster")
        return person

    # ---- small helpers -----------------------------------------------------------------

    def _require(self) -> IncidentState:
        if self._state is None:
            raise ApplicationError("incident has not opened yet", non_retryable=True)
        return self._state

    @property
    def _incident_id(self) -> str:
        return self._require().incident_id or "INC-pending"

    @property
    def _channels(self) -> Channels:
        assert self._policy is not None
        return self._policy.channels

    def _severity_policy(self) -> SeverityPolicy:
        assert self._policy is not None
        return self._policy.for_severity(self._require().severity)

    def _person(self, name: str | None) -> Person | None:
        if name is None or self._policy is None:
            return None
        return self._policy.roster.person(name)

    def _display(self, name: str) -> str:
        person = self._person(name)
        return person.label if person else name


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"
