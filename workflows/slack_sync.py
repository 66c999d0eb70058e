"""The incident's single #incidents Slack message, kept current beside the ladder.

One sync at a time, always of the newest snapshot. A Slack outage costs only this
message: the loop keeps trying at a steady pace and catches up once Slack answers,
while pages go out on their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.channels.slack_incident_message import SlackActivities
    from activities.heartbeating import HEARTBEAT_TIMEOUT
    from activities.models import IncidentSnapshot

RETRY_EVERY = timedelta(seconds=15)


class SlackSync:
    def __init__(self, log: Callable[[str, str], None]) -> None:
        self._log = log
        self._wanted: IncidentSnapshot | None = None
        self._synced: IncidentSnapshot | None = None
        self._task: asyncio.Future[None] | None = None
        self._failing = False

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def want(self, snapshot: IncidentSnapshot, after: asyncio.Future[None] | None) -> None:
        """Sync to ``snapshot``; first wait for ``after`` (the initial post that becomes it)."""
        self._wanted = snapshot
        if snapshot != self._synced and not self.busy:
            self._task = asyncio.ensure_future(self._run(after))

    async def _run(self, after: asyncio.Future[None] | None) -> None:
        if after is not None and not after.done():
            await asyncio.wait([after])
        while self._wanted is not None and self._wanted != self._synced:
            snapshot = self._wanted
            try:
                await workflow.execute_activity_method(
                    SlackActivities.sync_incident_message,
                    snapshot,
                    summary="Sync the Slack incident message",
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=timedelta(minutes=1),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,  # a dead worker's sync is retried fast
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                )
            except ActivityError as err:
                if not self._failing:
                    self._log(
                        "delivery_failed",
                        f"Could not update the Slack incident message: {err.cause}; retrying",
                    )
                self._failing = True
                await workflow.sleep(RETRY_EVERY, summary="Retry the Slack incident message")
                continue
            self._synced = snapshot
            if self._failing:
                self._failing = False
                self._log("delivery", "The Slack incident message is current again")
