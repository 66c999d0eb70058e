"""Heartbeat monitors: open the incident of a miss, resolve it at the next ping.

Both go through ``starter.incidents`` exactly as ingest does: a miss is an alert that
opens or joins the monitor's one incident (signal-with-start, dedup key
``heartbeat:<name>``), and the ping after it resolves that incident as a monitoring tool's
"resolved" event does. Both are idempotent, so a retried activity changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.config import PolicyStore
from domain.heartbeats import heartbeat_dedup_key, missed_alert
from domain.incident import AlertResolveRequest
from domain.policy import HeartbeatMonitor
from starter.incidents import open_or_join, resolve_from_source
from storage.maintenance import MaintenanceWindows

log = logging.getLogger(__name__)


class HeartbeatMissed(BaseModel):
    monitor: HeartbeatMonitor
    last_ping_at: datetime
    missed_at: datetime


class HeartbeatOpened(BaseModel):
    # False: the monitor is no longer in the policy; nothing was opened.
    monitored: bool
    incident_workflow_id: str | None = None


class HeartbeatRecovered(BaseModel):
    name: str


class HeartbeatActivities:
    """Needs the worker's Temporal client (to start and signal incident workflows), the
    task queue incidents run on, and the policy (a monitor removed from it stops)."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        policy: PolicyStore,
        windows: MaintenanceWindows | None = None,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._policy = policy
        self._windows = windows  # a miss during its service's maintenance pages nobody

    @activity.defn(name="Open heartbeat incident")
    async def open_heartbeat_incident(self, request: HeartbeatMissed) -> HeartbeatOpened:
        name = request.monitor.name
        if self._policy.get().heartbeat(name) is None:
            log.warning("heartbeat %r missed but no longer in the policy: not alerting", name)
            return HeartbeatOpened(monitored=False)
        alert = missed_alert(request.monitor, request.last_ping_at, request.missed_at)
        window = (
            await asyncio.to_thread(self._windows.active_for, alert.service, request.missed_at)
            if self._windows is not None
            else None
        )
        handle = await open_or_join(
            self._client,
            alert,
            task_queue=self._task_queue,
            hold=window.hold() if window is not None else None,
        )
        return HeartbeatOpened(monitored=True, incident_workflow_id=handle.id)

    @activity.defn(name="Resolve heartbeat incident")
    async def resolve_heartbeat_incident(self, request: HeartbeatRecovered) -> bool:
        """True when an open incident was told; False when none is open (resolved by hand)."""
        resolve = AlertResolveRequest(
            source="heartbeat", dedup_key=heartbeat_dedup_key(request.name)
        )
        return await resolve_from_source(self._client, resolve)
