"""RunbookWorkflow: one run of a service's runbook checks, as a child of the incident.

Every check is its own activity, all started at once; each has its own timeout and
heartbeats, so one hanging check costs only itself. The run has its own history in the
Temporal UI (``runbook/INC-.../2``): one activity per check, named after it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.runbooks.models import RunCheck
    from domain.runbooks import Check, CheckResult, Outcome, RunbookRun

# Checks only read, so a retry is harmless; two tries ride out one worker restart.
_RETRY = RetryPolicy(maximum_attempts=2, initial_interval=timedelta(seconds=1))
_HEARTBEAT = timedelta(seconds=10)
_MARGIN = timedelta(seconds=5)  # scheduling and start-up, on top of the check's own timeout


class RunbookInput(BaseModel):
    incident_id: str
    service: str
    run: RunbookRun  # number, reason, and the names of the checks (empty: all)
    checks: list[Check] = Field(default_factory=list)  # in the runbook's order


def runbook_workflow_id(incident_id: str, number: int) -> str:
    return f"runbook/{incident_id}/{number}"


@workflow.defn
class RunbookWorkflow:
    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookRun:
        results = await asyncio.gather(*(self._check(inp, check) for check in inp.checks))
        return inp.run.model_copy(update={"results": list(results), "finished_at": workflow.now()})

    async def _check(self, inp: RunbookInput, check: Check) -> CheckResult:
        started = workflow.now()
        if check.kind == "manual":
            return CheckResult(
                name=check.name, kind=check.kind, outcome=Outcome.MANUAL, summary=check.text[:500]
            )
        try:
            result: CheckResult = await workflow.execute_activity(
                "Run check",
                RunCheck(incident_id=inp.incident_id, service=inp.service, check=check),
                result_type=CheckResult,
                start_to_close_timeout=check.timeout + _MARGIN,
                heartbeat_timeout=_HEARTBEAT,
                retry_policy=_RETRY,
                summary=f"{check.name}: {check.label}"[:200],
            )
            return result
        except ActivityError as err:
            cause = err.cause or err
            return CheckResult(
                name=check.name,
                kind=check.kind,
                outcome=Outcome.ERROR,
                summary=f"did not finish: {cause}"[:500],
                started_at=started,
            )
