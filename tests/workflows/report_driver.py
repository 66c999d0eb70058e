"""A test-side stand-in for the ``monthly-report`` Schedule on the time-skipping server
(which has no Schedules): it sleeps to each given instant (the 1st at ``reports.at`` in the
policy's zone, as the Schedule's calendar spec fires) and starts the workflow the Schedule
starts, ``MonthlyReportWorkflow``, as a child on Firewatch's task queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import DeliveryResult
    from workflows.monthly_report import MonthlyReportWorkflow


@dataclass
class Firings:
    at: list[datetime]
    task_queue: str


@workflow.defn
class MonthlyScheduleStandIn:
    @workflow.run
    async def run(self, firings: Firings) -> list[list[DeliveryResult]]:
        results = []
        for n, at in enumerate(firings.at):
            wait = at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            results.append(
                await workflow.execute_child_workflow(
                    MonthlyReportWorkflow.run,
                    id=f"report/monthly/{at:%Y-%m-%dT%H%M}-{n}",
                    task_queue=firings.task_queue,
                )
            )
        return results
