"""MaintenanceWindowWorkflow: one small workflow per window (``maintenance/<id>``), its timer.

It sleeps until the window starts and announces it in #incidents, sleeps until the window
ends (or an ``end`` signal ends it early) and announces that, then releases the incidents
held by it: each incident opened during the window told it so (``hold``), and now gets
``release_paging``; one still open starts paging as a new incident would. An incident also
releases itself at the window's scheduled end (``domain.escalation.plan``), so a release
that goes missing costs an early end, never the page.

``register_hold`` is the incident's side of it, for ``workflows.incident``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import AnnounceMaintenance, MaintenanceActivities
    from domain.incident import IncidentState, ReleasePaging
    from domain.maintenance import MaintenanceWindow, maintenance_workflow_id
    from domain.messages import MaintenanceEndedMessage, MaintenanceStartedMessage

RELEASE_SIGNAL = "release_paging"  # IncidentWorkflow.release_paging (no import: no cycle)
ANNOUNCE_TIMEOUT = timedelta(seconds=60)
KEEP_TRYING = timedelta(minutes=30)  # an announcement late by more is not worth sending


class EndMaintenance(BaseModel):
    by: str
    at: datetime


class MaintenanceProgress(BaseModel):
    window: MaintenanceWindow
    phase: str  # waiting, started, ended, cancelled
    held: list[str]


@workflow.defn
class MaintenanceWindowWorkflow:
    @workflow.init
    def __init__(self, window: MaintenanceWindow) -> None:
        self._window = window
        self._ended: EndMaintenance | None = None
        self._held: list[str] = []  # incident workflow ids opened during the window
        self._released: set[str] = set()
        self._phase = "waiting"

    @workflow.signal
    def end(self, request: EndMaintenance) -> None:
        """Ended early (or cancelled before it started) with ``firewatch maintenance end``."""
        if self._ended is None:
            self._ended = request

    @workflow.signal
    def hold(self, workflow_id: str) -> None:
        """An incident opened during the window: release it when the window is over."""
        if workflow_id not in self._held:
            self._held.append(workflow_id)

    @workflow.query
    def progress(self) -> MaintenanceProgress:
        return MaintenanceProgress(window=self._window, phase=self._phase, held=self._held)

    @workflow.run
    async def run(self, window: MaintenanceWindow) -> str:
        if await self._sleep_until(window.starts_at, f"Window {window.id} starts"):
            self._phase = "started"
            started = self._started()
            await self._announce(started)
            await self._sleep_until(window.ends_at, f"Window {window.id} ends")
            ended = self._ended
            self._phase = "ended"
            await self._announce(
                MaintenanceEndedMessage(
                    **started.model_dump(),
                    ended_at=min(ended.at, window.ends_at) if ended else window.ends_at,
                    ended_by=ended.by if ended else None,
                )
            )
        else:
            self._phase = "cancelled"  # ended before it started: nothing to announce
        await self._release_all()
        return self._phase

    async def _sleep_until(self, at: datetime, summary: str) -> bool:
        """Wait until ``at``; False if the window was ended first."""
        remaining = at - workflow.now()
        if remaining > timedelta(0) and self._ended is None:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._ended is not None, timeout=remaining, timeout_summary=summary
                )
        return self._ended is None

    def _started(self) -> MaintenanceStartedMessage:
        w = self._window
        return MaintenanceStartedMessage(
            window=w.id,
            service=w.service,
            reason=w.reason,
            starts_at=w.starts_at,
            ends_at=w.ends_at,
            by=w.created_by,
        )

    async def _announce(self, message: MaintenanceStartedMessage | MaintenanceEndedMessage) -> None:
        try:
            await workflow.execute_activity_method(
                MaintenanceActivities.announce,
                AnnounceMaintenance(message=message, at=workflow.now()),
                summary=f"{message.kind.value.replace('_', ' ')} · {message.service}",
                start_to_close_timeout=ANNOUNCE_TIMEOUT,
                schedule_to_close_timeout=KEEP_TRYING,
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
        except FailureError as err:  # a channel down for half an hour: the window goes on
            workflow.logger.warning("maintenance announcement not delivered: %s", err)

    async def _release_all(self) -> None:
        """Signal every held incident; ones that register meanwhile are released too."""
        ended = self._ended
        request = ReleasePaging(
            window=self._window.id,
            by=ended.by if ended else None,
            early=ended is not None and ended.at < self._window.ends_at,
        )
        while pending := [w for w in self._held if w not in self._released]:
            for workflow_id in pending:
                self._released.add(workflow_id)
                handle = workflow.get_external_workflow_handle(workflow_id)
                with contextlib.suppress(FailureError):  # closed since: nothing to release
                    await handle.signal(RELEASE_SIGNAL, request)
            await workflow.wait_condition(workflow.all_handlers_finished)


async def register_hold(st: IncidentState) -> bool:
    """Tell the window's workflow that ``st`` is held by it. False: the window is over
    already (its workflow has finished), and the incident should page now."""
    hold = st.paging_hold
    if hold is None:
        return True
    handle = workflow.get_external_workflow_handle(maintenance_workflow_id(hold.window))
    try:
        await handle.signal(MaintenanceWindowWorkflow.hold, st.workflow_id)
    except FailureError:
        return False
    return True
