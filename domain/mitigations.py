"""Mitigations behind approval: propose, approve or decline, expire, run, verify.

The seed's "Mitigate" step (rollback, scale, failover, disable a feature) as actions on the
team's own systems. A responder proposes one of the service's actions; its ``risk`` says
whether it runs at once (low), once someone approves (medium; the proposer may confirm), or
only once *another* person approves (high: the two-person rule). A proposal nobody decides
on expires. A finished action goes on the timeline and the ticket, and a successful one is
verified by running the diagnostics again: a passing verification suggests resolving, it
never resolves by itself.
"""

from __future__ import annotations

from datetime import datetime

from domain import diagnostics
from domain.incident import IncidentState, MitigationDecision, MitigationRequest, Status
from domain.messages import MitigationEvent, MitigationMessage
from domain.policy import Policy
from domain.runbooks import ActionOutcome, MitigationProposal, ProposalStatus, Risk
from domain.transitions import (
    Effects,
    InvalidTransition,
    Outgoing,
    acknowledge_as,
    check_actor,
    label,
    log,
    set_status,
)


def propose(state: IncidentState, policy: Policy, req: MitigationRequest, now: datetime) -> Effects:
    check_actor(state, policy, req.by)
    runbook = diagnostics.runbook_for(state, policy)
    action = runbook.mitigations.get(req.action)
    if action is None:
        known = ", ".join(sorted(runbook.mitigations)) or "none"
        raise InvalidTransition(
            f"{req.action!r} is not a mitigation for {state.service}; defined: {known}"
        )
    for earlier in state.mitigations:
        if earlier.action == req.action and earlier.status in (
            ProposalStatus.PROPOSED,
            ProposalStatus.RUNNING,
        ):
            raise InvalidTransition(
                f"{req.action} is already {earlier.status.value} (#{earlier.number})"
            )
    proposal = MitigationProposal(
        number=len(state.mitigations) + 1,
        action=req.action,
        title=action.title,
        risk=action.risk,
        proposed_by=req.by,
        proposed_at=now,
        reason=req.reason,
    )
    # Proposing a fix is working on the incident: it acknowledges, as a status update does.
    effects = acknowledge_as(state, policy, req.by, now)
    state.mitigations.append(proposal)
    who = label(policy, req.by)
    because = f": {req.reason}" if req.reason else ""
    if action.risk == Risk.LOW:
        log(
            state,
            now,
            "mitigation",
            f"{who} ran #{proposal.number} {req.action} (low risk){because}",
            req.by,
        )
        effects += _run(state, policy, proposal, now)
        return effects
    proposal.expires_at = now + policy.mitigations.approval_expires_after
    needs = "another person's approval" if action.risk == Risk.HIGH else "approval"
    log(
        state,
        now,
        "mitigation",
        f"{who} proposed #{proposal.number} {req.action}; needs {needs}{because}",
        req.by,
    )
    effects += _announce(policy, proposal, "proposed")
    return effects


def decide(state: IncidentState, policy: Policy, req: MitigationDecision, now: datetime) -> Effects:
    check_actor(state, policy, req.by)
    proposal = state.proposal(req.proposal)
    if proposal is None:
        raise InvalidTransition(f"there is no mitigation proposal #{req.proposal}")
    if proposal.status == ProposalStatus.PROPOSED and _expired(proposal, now):
        raise InvalidTransition(f"proposal #{proposal.number} ({proposal.action}) has expired")
    if proposal.status != ProposalStatus.PROPOSED:
        raise InvalidTransition(
            f"proposal #{proposal.number} ({proposal.action}) is already {proposal.status.value}"
        )
    who = label(policy, req.by)
    because = f": {req.reason}" if req.reason else ""
    if not req.approve:
        proposal.status = ProposalStatus.DECLINED
        proposal.decided_by, proposal.decided_at, proposal.expires_at = req.by, now, None
        proposal.decision_reason = req.reason
        log(
            state,
            now,
            "mitigation",
            f"{who} declined #{proposal.number} {proposal.action}{because}",
            req.by,
        )
        return _announce(policy, proposal, "declined")
    if proposal.risk == Risk.HIGH and req.by == proposal.proposed_by:
        raise InvalidTransition(
            f"{who} proposed #{proposal.number} {proposal.action}; "
            "another person must approve it (two-person rule)"
        )
    proposal.decided_by, proposal.decided_at = req.by, now
    proposal.decision_reason = req.reason
    log(
        state,
        now,
        "mitigation",
        f"{who} approved #{proposal.number} {proposal.action}{because}",
        req.by,
    )
    return _run(state, policy, proposal, now)


def expire(state: IncidentState, policy: Policy, number: int, now: datetime) -> Effects:
    proposal = state.proposal(number)
    if proposal is None or not proposal.waiting:
        return Effects()
    proposal.status = ProposalStatus.EXPIRED
    log(state, now, "mitigation", f"Proposal #{number} {proposal.action} expired without approval")
    return _announce(policy, proposal, "expired") if state.is_open else Effects()


def finished(
    state: IncidentState, policy: Policy, number: int, outcome: ActionOutcome, now: datetime
) -> Effects:
    """The action came back: record it, tell the thread, and verify a success."""
    proposal = state.proposal(number)
    if proposal is None or proposal.status != ProposalStatus.RUNNING:
        return Effects()
    proposal.status = ProposalStatus(outcome.status)
    proposal.outcome = outcome
    proposal.finished_at = now
    log(
        state, now, "mitigation", f"#{number} {proposal.action} {outcome.status}: {outcome.summary}"
    )
    effects = Effects(ticket=True)
    if state.is_open:
        effects += _announce(policy, proposal, "finished")
        # Still possibly mitigating: another action running, or one whose outcome is unknown.
        running = any(
            p.status in (ProposalStatus.RUNNING, ProposalStatus.UNKNOWN) for p in state.mitigations
        )
        if (
            proposal.status == ProposalStatus.FAILED
            and state.status == Status.MITIGATING
            and not running
            and state.mitigated_at is None
        ):
            # Nothing is mitigating it any more (and nobody said it was: mitigated_at).
            what = f"mitigation #{number} {proposal.action} failed"
            set_status(state, now, Status.INVESTIGATING, None, f"Status → Investigating ({what})")
    if proposal.status == ProposalStatus.SUCCEEDED:
        if state.mitigated_at is None:
            state.mitigated_at = now
        if state.is_open:
            effects += diagnostics.verify(state, policy, number, now)
    return effects


def _run(
    state: IncidentState, policy: Policy, proposal: MitigationProposal, now: datetime
) -> Effects:
    proposal.status = ProposalStatus.RUNNING
    proposal.expires_at = None
    if state.status != Status.MITIGATING:
        set_status(state, now, Status.MITIGATING, proposal.decided_by or proposal.proposed_by)
    effects = _announce(policy, proposal, "running")
    effects.mitigations.append(proposal.number)
    effects.ticket = True
    return effects


def _announce(policy: Policy, proposal: MitigationProposal, event: MitigationEvent) -> Effects:
    message = MitigationMessage(proposal=proposal.number, event=event)
    step = f"mitigation:{proposal.number}:{event}"
    return Effects(messages=[Outgoing(step, policy.channels.incidents, message)])


def _expired(proposal: MitigationProposal, now: datetime) -> bool:
    return proposal.expires_at is not None and now >= proposal.expires_at
