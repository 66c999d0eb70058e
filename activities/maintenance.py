"""A maintenance window's announcements in #incidents (``workflows.maintenance``).

Rendered with the current policy (its #incidents channel, people's names) and delivered
like any channel note (``activities.notify``): to Slack when configured, else the outbox,
once per window and kind whatever the retries.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity

from activities.models import DeliveryResult, Notification
from activities.notify import NotifyActivities
from activities.policy import PolicyActivities
from domain.maintenance import maintenance_workflow_id
from domain.messages import MaintenanceEndedMessage, MaintenanceStartedMessage
from domain.templates import render_maintenance_message


class AnnounceMaintenance(BaseModel):
    message: MaintenanceStartedMessage | MaintenanceEndedMessage
    at: datetime  # workflow time of the announcement


class MaintenanceActivities:
    def __init__(self, policies: PolicyActivities, notify: NotifyActivities) -> None:
        self._policies = policies
        self._notify = notify

    @activity.defn(name="Announce maintenance")
    async def announce(self, request: AnnounceMaintenance) -> DeliveryResult:
        policy = self._policies.load_policy_snapshot()
        params = request.message
        rendered = render_maintenance_message(params, policy)
        channel = policy.channels.incidents
        workflow_id = maintenance_workflow_id(params.window)
        note = Notification(
            idempotency_key=f"{workflow_id}:{params.kind.value}:{channel}:outbox",
            incident_id=workflow_id,
            workflow_id=workflow_id,
            kind=params.kind.value,
            recipient=channel,
            subject=rendered.subject,
            text=rendered.text,
            scheduled_at=request.at,
            channel_role="incidents",
        )
        result: DeliveryResult = await self._notify.deliver_notification(note)
        return result
