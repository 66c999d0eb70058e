"""What people do to an incident: the update handlers of ``IncidentWorkflow`` (its base).

Each action is checked before Temporal accepts it (a validator: a refused request leaves no
trace in the history), applied by ``domain`` (pure), and answered once the workflow's loop
has carried out what it made due, so the reply shows the incident as it is after the
action. Temporal finds update handlers on base classes too; the loop lives in
``workflows.incident``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import diagnostics, mitigations, transitions
    from domain.incident import (
        AcknowledgeRequest,
        AddResponderRequest,
        DiagnosticsRequest,
        EscalateRequest,
        IncidentState,
        MitigationDecision,
        MitigationRequest,
        ResolveRequest,
        SeverityChangeRequest,
        StatusUpdateRequest,
        TicketEdit,
    )
    from domain.policy import Policy
    from domain.transitions import Effects, InvalidTransition

# An action's reply waits at most this long for the loop to carry the action out.
_REPLY_WITHIN = timedelta(seconds=5)

Transition = Callable[[IncidentState, Policy, datetime], Effects]


class IncidentActions:
    _state: IncidentState | None
    _policy: Policy | None
    _effects: Effects

    def __init__(self) -> None:
        # Actions taken, and how many of them the loop has carried through (see _act).
        self._actions_taken = 0
        self._actions_settled = 0

    def _changed(self) -> None:
        """The workflow re-plans and wakes its loop (``IncidentWorkflow._changed``)."""
        raise NotImplementedError

    def _actions_carried_out(self) -> None:
        """The loop has nothing due: every action taken so far has been carried out."""
        self._actions_settled = self._actions_taken

    async def _ready(self) -> IncidentState:
        await workflow.wait_condition(
            lambda: self._state is not None and self._state.incident_id is not None
        )
        return self._require()

    def _require(self) -> IncidentState:
        if self._state is None:
            raise ApplicationError("incident has not opened yet", non_retryable=True)
        return self._state

    @workflow.update
    async def acknowledge(self, req: AcknowledgeRequest) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.acknowledge(st, p, req, now))

    @workflow.update
    async def post_update(self, req: StatusUpdateRequest) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.post_update(st, p, req, now))

    @workflow.update
    async def change_severity(self, req: SeverityChangeRequest) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.change_severity(st, p, req, now))

    @workflow.update
    async def escalate(self, req: EscalateRequest) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.escalate(st, p, req, now))

    @workflow.update
    async def add_responder(self, req: AddResponderRequest) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.add_responder(st, p, req, now))

    @workflow.update
    async def resolve(self, req: ResolveRequest) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.resolve(st, p, req, now))

    @workflow.update
    async def edit_ticket(self, req: TicketEdit) -> IncidentState:
        return await self._act(lambda st, p, now: transitions.edit_ticket(st, p, req, now))

    @workflow.update
    async def run_diagnostics(self, req: DiagnosticsRequest) -> IncidentState:
        return await self._act(lambda st, p, now: diagnostics.request(st, p, req, now))

    @workflow.update
    async def propose_mitigation(self, req: MitigationRequest) -> IncidentState:
        return await self._act(lambda st, p, now: mitigations.propose(st, p, req, now))

    @workflow.update
    async def decide_mitigation(self, req: MitigationDecision) -> IncidentState:
        return await self._act(lambda st, p, now: mitigations.decide(st, p, req, now))

    @acknowledge.validator
    def _validate_acknowledge(self, req: AcknowledgeRequest) -> None:
        self._precheck(req.by)

    @post_update.validator
    def _validate_post_update(self, req: StatusUpdateRequest) -> None:
        self._precheck(req.by)

    @change_severity.validator
    def _validate_change_severity(self, req: SeverityChangeRequest) -> None:
        self._precheck(req.by)

    @escalate.validator
    def _validate_escalate(self, req: EscalateRequest) -> None:
        self._precheck(req.by)

    @add_responder.validator
    def _validate_add_responder(self, req: AddResponderRequest) -> None:
        self._precheck(req.by, req.person)

    @resolve.validator
    def _validate_resolve(self, req: ResolveRequest) -> None:
        self._precheck(req.by)

    @edit_ticket.validator
    def _validate_edit_ticket(self, req: TicketEdit) -> None:
        self._precheck(req.by, open_only=False)  # after the resolution too

    @run_diagnostics.validator
    def _validate_run_diagnostics(self, req: DiagnosticsRequest) -> None:
        self._precheck(req.by)

    @propose_mitigation.validator
    def _validate_propose_mitigation(self, req: MitigationRequest) -> None:
        self._precheck(req.by)

    @decide_mitigation.validator
    def _validate_decide_mitigation(self, req: MitigationDecision) -> None:
        self._precheck(req.by)

    async def _act(self, transition: Transition) -> IncidentState:
        """Apply a person's action; the UI and deliveries in flight follow at once. The reply
        waits for the loop to carry out what the action made due (escalate now pages the
        next level, a severity change informs the team lead), so it shows the incident as
        it is after the action, not one step behind."""
        st = await self._ready()
        assert self._policy is not None
        try:
            self._effects += transition(st, self._policy, workflow.now())
        except InvalidTransition as err:
            raise ApplicationError(str(err), type="InvalidTransition", non_retryable=True) from None
        self._changed()
        self._actions_taken += 1
        mine = self._actions_taken
        # Bounded: a loop held up (a lookup waiting on a locked database) must not make the
        # caller time out and retry an action that was applied; it gets the state as it is.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._actions_settled >= mine or not st.is_open,
                timeout=_REPLY_WITHIN,
                timeout_summary="Reply once the action is carried out",
            )
        return st

    def _precheck(self, by: str | None, *people: str, open_only: bool = True) -> None:
        # Before the incident has opened there is nothing to check yet; _act checks again.
        if self._state is None or self._policy is None:
            return
        try:
            if open_only:
                transitions.check_actor(self._state, self._policy, by)
            elif by is not None:
                transitions.check_person(self._policy, by)
            for name in people:
                transitions.check_person(self._policy, name)
        except InvalidTransition as err:
            raise ApplicationError(str(err), type="InvalidTransition", non_retryable=True) from None
