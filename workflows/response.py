"""Diagnostics runs and mitigation actions in flight, beside the escalation ladder.

Each diagnostics run is a child workflow (``workflows.runbook``); each approved mitigation
is one activity carrying its idempotency key to the target. Both start and move on: the
incident loop never waits for them. Their results are handed back here and applied by the
loop between steps (``domain.diagnostics.finished``, ``domain.mitigations.finished``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.runbooks.models import MitigationResult, RunMitigation
    from domain import diagnostics, mitigations
    from domain.incident import IncidentState
    from domain.policy import Policy
    from domain.runbooks import ActionOutcome, CheckResult, Outcome, RunbookRun
    from domain.transitions import Effects
    from workflows.runbook import RunbookInput, RunbookWorkflow, runbook_workflow_id

_HEARTBEAT = timedelta(seconds=10)
_MARGIN = timedelta(seconds=10)
# The same idempotency key on every attempt: the target runs the action once (HTTP), and a
# command found half-run is reported as unknown rather than run again (the activity).
_ACTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


class ResponseTasks:
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._runs: set[asyncio.Task[None]] = set()
        self._actions: set[asyncio.Task[None]] = set()
        self.finished_runs: list[RunbookRun] = []
        self.finished_actions: list[tuple[int, ActionOutcome]] = []

    @property
    def busy(self) -> bool:
        return bool(self._runs) or self.acting

    @property
    def acting(self) -> bool:
        """A mitigation is on its way: its outcome belongs in the record."""
        return bool(self._actions)

    def take_results(self, st: IncidentState, policy: Policy, now: datetime) -> Effects:
        """What the runs and actions that came back while the loop was busy change."""
        effects = Effects()
        while self.finished_runs:
            effects += diagnostics.finished(st, policy, self.finished_runs.pop(0), now)
        while self.finished_actions:
            number, outcome = self.finished_actions.pop(0)
            effects += mitigations.finished(st, policy, number, outcome, now)
        return effects

    def cancel_runs(self) -> None:
        """The incident is resolved: diagnostics still running no longer matter. Their
        children are asked to stop before the incident completes, so that no late result
        races its completion (which would fail the completing workflow task, and with it a
        person's update accepted in that task)."""
        for task in self._runs:
            task.cancel()

    def start_run(self, st: IncidentState, policy: Policy, number: int) -> None:
        run = st.runbook_run(number)
        runbook = policy.runbooks.get(st.service)
        if run is None or runbook is None or st.incident_id is None:
            return
        checks = [c for c in runbook.checks if not run.checks or c.name in run.checks]
        inp = RunbookInput(incident_id=st.incident_id, service=st.service, run=run, checks=checks)
        self._spawn(self._runs, self._run(inp))

    def start_mitigation(self, st: IncidentState, policy: Policy, number: int) -> None:
        proposal = st.proposal(number)
        runbook = policy.runbooks.get(st.service)
        action = runbook.mitigations.get(proposal.action) if runbook and proposal else None
        if proposal is None or action is None or st.incident_id is None:
            return
        inp = RunMitigation(
            incident_id=st.incident_id,
            service=st.service,
            action=proposal.action,
            mitigation=action,
            proposed_by=proposal.proposed_by,
            approved_by=proposal.decided_by,
            idempotency_key=f"{st.incident_id}:mitigation:{number}",
        )
        self._spawn(self._actions, self._act(number, inp, action.timeout + _MARGIN))

    def _spawn(self, into: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        into.add(task)
        task.add_done_callback(into.discard)

    async def _run(self, inp: RunbookInput) -> None:
        summary = f"Diagnostics #{inp.run.number} · {inp.incident_id} · {inp.run.reason}"[:200]
        try:
            done = await workflow.execute_child_workflow(
                RunbookWorkflow.run,
                inp,
                id=runbook_workflow_id(inp.incident_id, inp.run.number),
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                # Cancelled at resolution: ask, do not wait (the run's result no longer matters).
                cancellation_type=ChildWorkflowCancellationType.TRY_CANCEL,
                task_queue=runbooks_queue(),
                static_summary=summary,
            )
        except (ChildWorkflowError, WorkflowAlreadyStartedError) as err:
            failed = CheckResult(
                name="runbook",
                kind="run",
                outcome=Outcome.ERROR,
                summary=f"did not run: {err}"[:500],
            )
            done = inp.run.model_copy(update={"results": [failed], "finished_at": workflow.now()})
        self.finished_runs.append(done)
        self._wake()

    async def _act(self, number: int, inp: RunMitigation, timeout: timedelta) -> None:
        try:
            result: MitigationResult = await workflow.execute_activity(
                "Run mitigation",
                inp,
                result_type=MitigationResult,
                start_to_close_timeout=timeout,
                heartbeat_timeout=_HEARTBEAT,
                retry_policy=_ACTION_RETRY,
                task_queue=runbooks_queue(),
                summary=f"#{number} {inp.action} · {inp.incident_id}"[:200],
            )
            outcome = ActionOutcome(
                status=result.status,
                summary=result.summary,
                request=result.request,
                response_status=result.response_status,
                response_excerpt=result.response_excerpt,
                attempts=result.attempts,
            )
        except ActivityError as err:
            cause = err.cause or err
            outcome = ActionOutcome(status="unknown", summary=f"did not finish: {cause}"[:500])
        self.finished_actions.append((number, outcome))
        self._wake()


def runbooks_queue() -> str:
    return f"{workflow.info().task_queue}-runbooks"  # worker.runbooks_queue
