"""IncidentWorkflow: one durable workflow per incident, from first alert to resolution.

It plans with ``domain.escalation.plan``, applies what people and steps do with
``domain.transitions`` (pure: new state plus effects), and carries the effects out:
notifications (``deliveries``), the ticket, the Slack message (``slack_sync``) and what the
Temporal UI shows (``publish``). It sleeps on one lazy timer until the next step or until
someone acts. The event history reads as the incident's timeline.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import OpenIncident
    from activities.opening import OpeningActivities
    from domain import diagnostics, inbox, mitigations, transitions
    from domain.escalation import Step, StepKind, plan
    from domain.incident import (
        Alert,
        AlertAcknowledgeRequest,
        AlertResolveRequest,
        IncidentInput,
        IncidentState,
        ReleasePaging,
        TimelineEntry,
    )
    from domain.policy import Policy
    from domain.transitions import Effects
    from workflows.effects import QUICK, QUICK_RETRY, EffectSender
    from workflows.incident_actions import IncidentActions
    from workflows.lazy_timer import LazyTimer
    from workflows.lookups import Lookups
    from workflows.maintenance import register_hold
    from workflows.postmortem import start_postmortem
    from workflows.publish import Publisher
    from workflows.response import ResponseTasks

_FIRST_ALERT = timedelta(minutes=5)
# Resolved with notifications still on their way (a channel is down): wait this long at most
# before the run ends. A new alert for the same key does not wait: paging comes first.
_SETTLE_WITHIN = timedelta(minutes=30)


@workflow.defn
class IncidentWorkflow(IncidentActions):
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        super().__init__()
        self._state: IncidentState | None = inp.state
        self._policy: Policy | None = inp.policy
        self._inbox: list[Alert] = list(inp.pending_alerts)
        self._source_actions: list[AlertResolveRequest | AlertAcknowledgeRequest] = []
        self._releases: list[ReleasePaging] = []  # maintenance windows over (workflows.maintenance)
        self._effects = Effects()  # decided, not carried out yet
        self._wake = False
        self._lookups = Lookups()
        self._timer = LazyTimer()
        self._publisher = Publisher()
        self._sender = EffectSender(self._log_delivery)
        self._response = ResponseTasks(self._wake_up)

    # ---- queries and signals (machines) --------------------------------------------------

    @workflow.query
    def state(self) -> IncidentState | None:
        return self._state

    @workflow.signal
    def attach_alert(self, alert: Alert) -> None:
        st = self._state
        if st is not None and st.is_open:
            inbox.keep_alert(st, alert)  # a joining alert changes no timer: let the loop sleep
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

    @workflow.signal
    def release_paging(self, request: ReleasePaging) -> None:
        self._releases.append(request)
        self._wake = True

    # ---- updates (starters); what people do is in workflows.incident_actions ----------

    @workflow.update
    async def opened(self) -> IncidentState:
        """Wait until the incident has its id."""
        return await self._ready()

    @workflow.update
    async def trigger(self, alert: Alert) -> IncidentState:
        """Attach an alert and wait for the incident id (update-with-start callers)."""
        self.attach_alert(alert)
        return await self._ready()

    # ---- the run ---------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        if self._state is None:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._inbox), timeout=timedelta(minutes=5)
                )
            except TimeoutError:
                raise ApplicationError("started without an alert", non_retryable=True) from None
            await self._open(self._inbox.pop(0), inp)
        st = await self._drive()
        await self._close(st)
        if self._inbox:
            # Alerts that arrived after resolution open a new incident (same dedup key).
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(IncidentInput(pending_alerts=self._inbox))
        return st

    async def _open(self, alert: Alert, inp: IncidentInput) -> None:
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
            start_to_close_timeout=QUICK,
            retry_policy=QUICK_RETRY,
        )
        self._policy = opening.policy or self._policy
        assert self._policy is not None
        self._lookups.holders = {(role, now): p for role, p in opening.oncall.items()}
        st = IncidentState.opened(
            info.workflow_id,
            opening.incident_id,
            alert,
            now,
            slack_message=opening.slack_message,
            local_delivery=opening.local_delivery,
            hold=inp.hold,
        )
        self._state = st
        inbox.keep_alert(st, alert)
        self._effects += transitions.open_incident(st, self._policy, now)
        if not await register_hold(st):  # the window is over already: page now
            self._effects += transitions.release_paging(st, self._policy, workflow.now())
        self._effects += diagnostics.at_open(st, self._policy, now)

    async def _drive(self) -> IncidentState:
        """Plan, carry out what is due, send the step's effects, sleep; until resolved."""
        st = self._require()
        assert self._policy is not None
        while True:
            self._wake = False  # cleared first: anything arriving while we await sets it
            self._absorb(st)
            if not st.is_open:
                return st  # _close sends what is pending together with the resolution
            await self._schedule_review(st)  # the P3 review step needs its date to be planned
            now = self._timer.now()
            current = plan(st, self._policy.for_severity(st.severity), now)
            for step in current.due:
                await self._carry_out(step)
                st.fired.append(step.key)
            if current.due:
                st.fired = [key for key in st.fired if key in current.live_keys]
            await self._flush()
            if current.due or self._wake:
                continue  # re-plan: an ack may have landed while we were paging
            self._actions_carried_out()  # nothing due: the actions' replies may go
            await self._sleep(current.next)

    async def _sleep(self, upcoming: Step | None) -> None:
        """Show what comes next, then wait for it or for people, whichever is first."""
        st = self._require()
        self._publish(upcoming)
        quiet = not self._sender.busy and not self._response.busy
        if workflow.info().is_continue_as_new_suggested() and quiet:
            # Not past a wake: an action's handler waits for this loop to carry it through.
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self._wake)
            if not self._wake:  # nothing arrived meanwhile that this run must handle
                workflow.continue_as_new(IncidentInput(state=st, policy=self._policy))
        # Timer summaries are what the Temporal UI's Timeline shows of an open incident.
        label = (
            f"{self._incident_id} · Next: {upcoming.label} at {upcoming.at:%H:%M} UTC"
            if upcoming
            else f"{self._incident_id} · Wait for people"
        )
        await self._timer.wait(upcoming.at if upcoming else None, label, lambda: self._wake)

    async def _close(self, st: IncidentState) -> None:
        assert self._policy is not None
        review_at = await self._lookups.postmortem_slot(st, self._policy)
        self._effects += transitions.resolution(st, self._policy, review_at)
        await self._flush()
        self._publish(None)
        if review_at is not None:
            problem = await start_postmortem(st, self._policy, review_at)
            if problem is not None:
                self._log("postmortem", problem)
        self._response.cancel_runs()
        await self._settle()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _settle(self) -> None:
        """Let notifications still on their way arrive (a channel may be down), unless a new
        alert for this key is waiting: it opens its incident now."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: not (self._sender.busy or self._response.busy) or bool(self._inbox),
                timeout=_SETTLE_WITHIN,
                timeout_summary="Let the last notifications arrive",
            )
        if self._sender.busy:
            self._log("delivery_failed", "Closed with notifications still undelivered")

    # ---- steps: look people up, then let the domain decide ------------------------------

    async def _carry_out(self, step: Step) -> None:
        st = self._require()
        assert self._policy is not None
        if step.kind == StepKind.PROPOSAL_EXPIRY and step.proposal is not None:
            self._effects += mitigations.expire(st, self._policy, step.proposal, step.at)
            return
        role = transitions.person_needed(step, st, self._policy)
        person = (
            await self._lookups.holder(self._policy, role, step.at) if role is not None else None
        )
        self._effects += transitions.carry_out(step, st, self._policy, person)

    async def _schedule_review(self, st: IncidentState) -> None:
        """P3 (and a severity change to it): the review's next-business-day date."""
        if not self._effects.review:
            return
        assert self._policy is not None
        self._effects.review = False
        st.review_at = await self._lookups.next_business_day(self._policy, workflow.now())
        when = f"{st.review_at:%Y-%m-%d %H:%M} UTC"
        self._log("review", f"Review scheduled for {when} (next business day)")

    # ---- carrying effects out -----------------------------------------------------------

    async def _flush(self) -> None:
        """Send what was decided. Pages go out first and each on its own; the ticket and the
        Slack message follow beside them, never in front."""
        st = self._require()
        assert self._policy is not None
        # Before anything is sent: whoever gets a message can find the incident by its id.
        self._publisher.attributes(st)
        effects, self._effects = self._effects, Effects(review=self._effects.review)
        if effects.place_assignee:  # before any escalate-now: it pages above the assignee
            ladder = self._policy.for_severity(st.severity).ladder
            holders = {
                level: (await self._lookups.holder(self._policy, rung.target, workflow.now())).name
                for level, rung in enumerate(ladder)
            }
            transitions.place_assignee(st, holders)
        for page in effects.pages:
            person = await self._lookups.holder(self._policy, page.role, workflow.now())
            effects += transitions.direct_page(st, self._policy, page, person, workflow.now())
        messages = transitions.quiet_while_held(st, self._policy, effects.messages)
        ticket = transitions.ticket_due(st, effects, workflow.now())
        await self._sender.send(st, self._policy, messages, ticket)
        # Diagnostics and mitigations start after the pages, and run beside the ladder.
        for number in effects.runbook_runs:
            self._response.start_run(st, self._policy, number)
        for number in effects.mitigations:
            self._response.start_mitigation(st, self._policy, number)

    # ---- state changes the workflow itself makes -------------------------------------------

    def _absorb(self, st: IncidentState) -> None:
        """Alerts that arrived while the loop was busy, and what monitoring tools said."""
        assert self._policy is not None
        self._effects += inbox.absorb(
            st, self._policy, workflow.now(), self._inbox, self._releases, self._source_actions
        )
        self._effects += self._response.take_results(st, self._policy, workflow.now())
        self._sender.deliveries.drop_moot(st)

    def _changed(self) -> None:
        st = self._require()
        assert self._policy is not None
        self._sender.deliveries.drop_moot(st)
        upcoming = None
        if st.is_open:
            current = plan(st, self._policy.for_severity(st.severity), workflow.now())
            upcoming = current.due[0] if current.due else current.next
        self._publish(upcoming)
        self._wake = True

    def _publish(self, upcoming: Step | None) -> None:
        st = self._require()
        st.next_step_at = upcoming.at if upcoming else None
        st.next_step_label = upcoming.label if upcoming else None
        self._publisher.attributes(st)
        self._publisher.details(st, self._sender.deliveries.problem)

    def _log(self, kind: str, text: str) -> None:
        self._require().timeline.append(TimelineEntry(at=workflow.now(), kind=kind, text=text))

    def _wake_up(self) -> None:
        self._wake = True

    def _log_delivery(self, kind: str, text: str) -> None:
        """Deliveries and the Slack sync report here when they finish, between steps."""
        self._log(kind, text)
        self._publisher.details(self._require(), self._sender.deliveries.problem)

    # ---- small helpers -----------------------------------------------------------------

    @property
    def _incident_id(self) -> str:
        return self._require().incident_id or "INC-pending"
