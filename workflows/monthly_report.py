"""MonthlyReportWorkflow: last month's report to #engineering and by email, fired on the
first of each month by the ``monthly-report`` Temporal Schedule (``starter.report_schedule``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import DeliveryResult
    from activities.reports import MonthlyReportActivities, SendMonthlyReport


@workflow.defn
class MonthlyReportWorkflow:
    @workflow.run
    async def run(self) -> list[DeliveryResult]:
        return await workflow.execute_activity_method(
            MonthlyReportActivities.send,
            SendMonthlyReport(at=workflow.now(), workflow_id=workflow.info().workflow_id),
            summary="Last month's report to #engineering and by email",
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=20),
        )
