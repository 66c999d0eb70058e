"""Diagnostics: when the service's runbook checks run, and what their results change.

A run starts when a P0-P2 incident opens (``diagnostics_at_open``), when a responder asks
(``firewatch runbook``), and after a mitigation to verify it. The workflow runs it as a child
workflow and hands the results back to :func:`finished`.
"""

from __future__ import annotations

from datetime import datetime

from domain.incident import DiagnosticsRequest, IncidentState
from domain.messages import DiagnosticsMessage
from domain.policy import Policy
from domain.runbooks import Outcome, Runbook, RunbookRun, digest
from domain.transitions import Effects, InvalidTransition, Outgoing, check_actor, label, log

KEPT_RUNS = 5  # the newest runs stay on the incident; the timeline keeps every digest


def at_open(state: IncidentState, policy: Policy, now: datetime) -> Effects:
    """The seed's first minutes: check health, changes and dependencies before anyone asks."""
    runbook = policy.runbooks.get(state.service)
    if not policy.for_severity(state.severity).diagnostics_at_open or not _runnable(runbook):
        return Effects()
    return _start(state, now, "incident opened")


def request(
    state: IncidentState, policy: Policy, req: DiagnosticsRequest, now: datetime
) -> Effects:
    """Run the checks again (all, or the one named), as asked by a responder."""
    check_actor(state, policy, req.by)
    runbook = runbook_for(state, policy)
    if not _runnable(runbook):
        raise InvalidTransition(f"the {state.service} runbook has no checks that run by themselves")
    checks: list[str] = []
    if req.check is not None:
        check = runbook.check(req.check)
        if check is None or check.kind == "manual":
            names = ", ".join(c.name for c in runbook.automatic)
            raise InvalidTransition(
                f"no check {req.check!r} in the {state.service} runbook; checks: {names}"
            )
        checks = [check.name]
    return _start(state, now, f"asked by {label(policy, req.by)}", req.by, checks)


def verify(state: IncidentState, policy: Policy, proposal: int, now: datetime) -> Effects:
    """After a mitigation: run the checks again, as the seed's "Verify fix" asks."""
    if not _runnable(policy.runbooks.get(state.service)):
        return Effects()
    found = state.proposal(proposal)
    action = found.action if found is not None else f"mitigation #{proposal}"
    effects = _start(state, now, f"verify {action}", verifies=proposal)
    if found is not None:
        found.verify_run = state.runbook_runs_started
    return effects


def finished(state: IncidentState, policy: Policy, run: RunbookRun, now: datetime) -> Effects:
    """Record a finished run: the timeline, the ticket, and a reply in the incident thread."""
    ours = state.runbook_run(run.number)
    if ours is None or ours.finished_at is not None:
        return Effects()  # forgotten (too old) or already recorded
    ours.finished_at = run.finished_at or now
    ours.results = run.results
    failing = [r for r in run.results if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
    verdict = "all passed" if not failing else f"{len(failing)} of {len(run.results)} not ok"
    log(state, now, "diagnostics", f"Diagnostics #{run.number} ({verdict}): {digest(run.results)}")
    if run.verifies is not None:
        proposal = state.proposal(run.verifies)
        what = proposal.action if proposal is not None else f"mitigation #{run.verifies}"
        if ours.passed:
            log(state, now, "verify", f"Verification after {what} passed: consider resolving")
        else:
            log(state, now, "verify", f"Verification after {what} did not pass")
    if not state.is_open or state.paging_hold is not None:
        return Effects(ticket=True)  # closed, or held and never announced: nothing to post
    message = DiagnosticsMessage(run=run.number)
    step = f"diagnostics:{run.number}"
    return Effects(messages=[Outgoing(step, policy.channels.incidents, message)], ticket=True)


def runbook_for(state: IncidentState, policy: Policy) -> Runbook:
    runbook = policy.runbooks.get(state.service)
    if runbook is None:
        raise InvalidTransition(f"there is no runbook for service {state.service!r}")
    return runbook


def _runnable(runbook: Runbook | None) -> bool:
    return runbook is not None and bool(runbook.automatic)


def _start(
    state: IncidentState,
    now: datetime,
    reason: str,
    by: str | None = None,
    checks: list[str] | None = None,
    verifies: int | None = None,
) -> Effects:
    state.runbook_runs_started += 1
    number = state.runbook_runs_started
    run = RunbookRun(
        number=number,
        reason=reason,
        requested_by=by,
        checks=checks or [],
        verifies=verifies,
        started_at=now,
    )
    state.runbook_runs = [*state.runbook_runs, run][-KEPT_RUNS:]
    which = f" ({', '.join(checks)})" if checks else ""
    log(state, now, "diagnostics", f"Diagnostics #{number} started{which}: {reason}", by)
    return Effects(runbook_runs=[number])
