"""Opening an incident: policy snapshot, INC id and channel set-up in one quick local call.

One local activity instead of three keeps the first workflow task short: it is what every
alert storm and every `firewatch trigger` waits for.
"""

from __future__ import annotations

from temporalio import activity

from activities.channels.settings import ChannelSettings
from activities.incident_ids import IncidentIdActivities
from activities.models import OpenedIncident, OpenIncident
from activities.people import OncallActivities
from activities.policy import PolicyActivities


class OpeningActivities:
    def __init__(
        self,
        policies: PolicyActivities,
        ids: IncidentIdActivities,
        channels: ChannelSettings,
        oncall: OncallActivities,
    ) -> None:
        self._policies = policies
        self._oncall = oncall
        self._ids = ids
        self._channels = channels

    @activity.defn(name="Open incident")
    def open_incident(self, request: OpenIncident) -> OpenedIncident:
        enabled = self._channels.enabled_channels()
        policy = self._policies.load_policy_snapshot() if request.with_policy else None
        return OpenedIncident(
            # Recorded with its summary, service and severity: the id -> run mapping that
            # lookups by INC id use, and what the incident list shows.
            incident_id=self._ids.allocate_for(request),
            policy=policy,
            slack_message="slack" in enabled,
            local_delivery=not enabled,
            # The level-1 page (and P0's management notice) is due at this very instant.
            oncall=self._oncall.on_call(policy.roster, request.at) if policy is not None else {},
        )
